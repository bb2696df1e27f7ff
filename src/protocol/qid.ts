/** The server's unique identity of a file: type[1] version[4] path[8]. */
export interface Qid {
  type: number;
  version: number;
  path: bigint;
}
