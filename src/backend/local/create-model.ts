import { MappedFileModel } from './mapped-file-model.js';
import { MappedXattrModel } from './mapped-xattr-model.js';
import { NoneModel, PassthroughModel } from './passthrough-model.js';
import type { SecurityModel, SecurityModelName } from './security-model.js';

export interface SecurityOptions {
  model: SecurityModelName;
  /** Host permission bits of files the mapped models create (default 0600, as QEMU's). */
  fmode?: number;
  /** Host permission bits of directories the mapped models create (default 0700, as QEMU's). */
  dmode?: number;
}

export const DEFAULT_FMODE = 0o600;
export const DEFAULT_DMODE = 0o700;

export function createSecurityModel(o: SecurityOptions): SecurityModel {
  switch (o.model) {
    case 'passthrough':
      return new PassthroughModel();
    case 'none':
      return new NoneModel();
    case 'mapped-xattr':
      return new MappedXattrModel({ fmode: o.fmode ?? DEFAULT_FMODE, dmode: o.dmode ?? DEFAULT_DMODE });
    case 'mapped-file':
      return new MappedFileModel({ fmode: o.fmode ?? DEFAULT_FMODE, dmode: o.dmode ?? DEFAULT_DMODE });
  }
}
