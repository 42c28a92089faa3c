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
export type SkipReason = 'empty' | 'truncated' | 'corrupt' | 'not an image' | 'too large' | 'unreadable' | 'missing' | 'unsupported format';

/** What a user can do about a file skipped for each reason. */
export const SKIP_HINTS: Record<SkipReason, string> = {
  empty: 'the file has no bytes: copy or download it again',
  truncated: 'the file is cut short: copy or download it again',
  corrupt: 'the file is damaged: open and re-save it in an image editor, or replace it',
  'not an image': 'give a JPEG, PNG, WebP, GIF, TIFF, AVIF or BMP image',
  'too large': 'shrink the image, or raise maxPixels to read it',
  unreadable: 'check that the path is a file you can read',
  missing: 'check the path',
  'unsupported format': 'convert it to JPEG or PNG',
};

/** A file left out of a run, and why; the run goes on without it. */
export interface Skipped {
  path: string;
  reason: SkipReason;
  /** The decoder's or file system's own words. */
  detail: string;
}
