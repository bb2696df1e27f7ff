import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, runToolAsync } from './host-tools.js';

/** One .deb the install needs, as apt resolved it. */
export interface DebFile {
  pkg: string;
  version: string;
  /** Where apt downloaded it. */
  path: string;
  /** Its file name, e.g. libc6_2.36-9+deb12u10_amd64.deb. */
  file: string;
}

/**
 * The Debian mirror the host's apt is configured with (the main archive, not -security or
 * -updates), read from `apt-cache policy` so that one-line and deb822 sources alike count.
 */
export async function hostDebianMirror(): Promise<string> {
  const lines = (await runToolAsync('apt-cache', ['policy'])).split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const uri = /^\s*\d+\s+(https?:\/\/\S+)\s+\S+\s+\S+\s+Packages/.exec(lines[i]!);
    if (uri && /\bo=Debian,/.test(lines[i + 1]!) && /\bl=Debian,/.test(lines[i + 1]!)) return uri[1]!;
  }
  throw new Error('the host\'s apt has no Debian archive among its sources (add one, e.g. http://deb.debian.org/debian, and run apt-get update)');
}

/**
 * A private apt for one suite and architecture, kept in the cache: its own sources, lists and
 * downloaded archives, none of the host's state, and no root needed (as mmdebstrap does it).
 */
export class AptArchive {
  readonly dir: string;
  private readonly config: string;

  constructor(readonly suite: string, readonly mirror: string, readonly arch = 'amd64') {
    this.dir = join(cacheDir(), 'apt', `${suite}-${arch}`);
    this.config = join(this.dir, 'apt.conf');
  }

  /** Write the configuration and fetch the suite's package lists (apt-get update). */
  async update(): Promise<void> {
    for (const d of ['etc/apt.conf.d', 'etc/preferences.d', 'etc/sources.list.d', 'lists/partial', 'archives/partial', 'dpkg']) {
      mkdirSync(join(this.dir, d), { recursive: true, mode: 0o755 });
    }
    // An empty status: apt resolves as for a system with nothing installed.
    if (!existsSync(join(this.dir, 'dpkg', 'status'))) writeFileSync(join(this.dir, 'dpkg', 'status'), '', { mode: 0o644 });
    const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
    const signedBy = existsSync(keyring) ? ` [signed-by=${keyring}]` : '';
    writeFileSync(join(this.dir, 'etc', 'sources.list'), `deb${signedBy} ${this.mirror} ${this.suite} main\n`, { mode: 0o644 });
    const d = this.dir;
    writeFileSync(
      this.config,
      [
        `Dir::Etc "${d}/etc/";`,
        `Dir::Etc::SourceList "${d}/etc/sources.list";`,
        `Dir::Etc::SourceParts "${d}/etc/sources.list.d/";`,
        `Dir::Etc::Main "${d}/etc/apt.conf";`,
        `Dir::Etc::Parts "${d}/etc/apt.conf.d/";`,
        `Dir::Etc::Preferences "${d}/etc/preferences";`,
        `Dir::Etc::PreferencesParts "${d}/etc/preferences.d/";`,
        // The host's trusted keys, so that a mirror the host trusts is trusted here.
        'Dir::Etc::Trusted "/etc/apt/trusted.gpg";',
        'Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d/";',
        `Dir::State "${d}/";`,
        `Dir::State::Lists "${d}/lists/";`,
        `Dir::State::status "${d}/dpkg/status";`,
        `Dir::Cache "${d}/";`,
        `Dir::Cache::Archives "${d}/archives/";`,
        'Dir::Cache::pkgcache "";',
        'Dir::Cache::srcpkgcache "";',
        'Debug::NoLocking "true";',
        `APT::Architecture "${this.arch}";`,
        `APT::Architectures "${this.arch}";`,
        'APT::Install-Recommends "false";',
        'APT::Sandbox::User "root";',
        '',
      ].join('\n'),
    );
    await this.apt('apt-get', ['-q', 'update']);
  }

  private apt(cmd: string, args: string[]): Promise<string> {
    return runToolAsync(cmd, args, { env: { ...process.env, APT_CONFIG: this.config, LC_ALL: 'C' } });
  }

  /** The suite's uncompressed Packages index, as apt fetched it. */
  packagesIndex(): string {
    const suffix = `_dists_${this.suite}_main_binary-${this.arch}_Packages`;
    const found = readdirSync(join(this.dir, 'lists')).find((f) => f.endsWith(suffix));
    if (!found) throw new Error(`apt fetched no Packages index for ${this.suite} ${this.arch}`);
    return join(this.dir, 'lists', found);
  }

  /** Packages of Priority: required in the suite (debootstrap's minbase starts from these). */
  async requiredPackages(): Promise<string[]> {
    const out = await this.apt('apt-cache', ['dumpavail']);
    const names = new Set<string>();
    for (const stanza of out.split('\n\n')) {
      if (/^Priority: required$/m.test(stanza)) names.add(/^Package: (\S+)$/m.exec(stanza)![1]!);
    }
    return [...names].sort();
  }

  /** Whether the suite has a package of this name. */
  async has(pkg: string): Promise<boolean> {
    const out = await this.apt('apt-cache', ['policy', pkg]);
    return /Candidate:\s*(?!\(none\))\S+/.test(out);
  }

  /** `pkgs` and everything they depend on (no recommends), as apt would install them. */
  async resolve(pkgs: readonly string[]): Promise<DebFile[]> {
    // A simulation names every package and version (--print-uris leaves out what is cached).
    const plan = await this.apt('apt-get', ['-q', '-s', 'install', ...pkgs]);
    const debs: DebFile[] = [];
    for (const m of plan.matchAll(/^Inst (\S+) \((\S+) .*\[(\S+)\]\)/gm)) {
      const [pkg, version, arch] = [m[1]!, m[2]!, m[3]!];
      // apt's own file naming: an epoch's colon is escaped.
      const file = `${pkg}_${version.replace(/:/g, '%3a')}_${arch}.deb`;
      debs.push({ pkg, version, file, path: join(this.dir, 'archives', file) });
    }
    if (debs.length === 0) throw new Error(`apt resolved nothing to install for ${pkgs.join(' ')}`);
    return debs;
  }

  /** resolve(), with every .deb downloaded into the archive's cache. */
  async resolveAndDownload(pkgs: readonly string[]): Promise<DebFile[]> {
    const debs = await this.resolve(pkgs);
    await this.apt('apt-get', ['-q', '-y', '--download-only', 'install', ...pkgs]);
    for (const d of debs) if (!existsSync(d.path)) throw new Error(`apt did not download ${d.file}`);
    return debs;
  }
}
