// The one error the data layer throws: what went wrong, where, and what to do about it.

/** A dataset that cannot be trained on as given: a missing or empty folder, a class with no usable image… */
export class DataError extends Error {
  override readonly name = 'DataError';

  /**
   * @param what  what is wrong, in one sentence
   * @param path  the file or folder concerned
   * @param hint  what the user can do next
   */
  constructor(readonly what: string, readonly path: string, readonly hint: string) {
    super(`${what}: ${path}. ${hint}`);
  }
}

/** Why a file was left out of a run. */
export type SkipReason = 'empty' | 'truncated' | 'corrupt' | 'not an image' | 'too large' | 'unreadable' | 'missing';

/** A file left out of a run, and why; the run goes on without it. */
export interface Skipped {
  path: string;
  reason: SkipReason;
  /** The decoder's or file system's own words. */
  detail: string;
}
