// BMP, which torchvision (PIL), Keras and fastai read but libvips (and so sharp) does not: the
// header read here so that the size is checked before anything is allocated, the pixels decoded by
// bmp-ts into interleaved RGB that sharp takes as raw input.
import { decode } from 'bmp-ts';

/** The size a BMP file's header declares. */
export interface BmpHeader {
  width: number;
  height: number;
  /** The file size the header declares (0 when the writer left it out). */
  fileSize: number;
}

/** Bytes a BMP header needs: the 14-byte file header and the DIB header's size, width and height. */
export const BMP_HEAD_BYTES = 26;

/** Whether `head` starts a BMP file ("BM"). */
export const isBmp = (head: Uint8Array): boolean => head.length >= 2 && head[0] === 0x42 && head[1] === 0x4d;

/** Returns the header's size fields, or null when `head` is no BMP or too short; height is positive for top-down files too. */
export function readBmpHeader(head: Buffer): BmpHeader | null {
  if (!isBmp(head) || head.length < BMP_HEAD_BYTES) return null;
  const dibSize = head.readUInt32LE(14);
  // OS/2 BITMAPCOREHEADER (12 bytes) stores 16-bit sizes; every later header 32-bit signed ones.
  const [width, height] = dibSize === 12 ? [head.readUInt16LE(18), head.readUInt16LE(20)] : [head.readInt32LE(18), Math.abs(head.readInt32LE(22))];
  return { width, height, fileSize: head.readUInt32LE(2) };
}

/**
 * Returns the image's pixels as interleaved 8-bit RGB (alpha dropped: most BMP writers leave it 0),
 * top row first. Throws on data the decoder cannot read. The caller checks the header's size first.
 */
export function decodeBmp(bytes: Buffer): { data: Buffer; width: number; height: number } {
  // bmp-ts's default layout is A, B, G, R per pixel.
  const img = decode(bytes);
  const { width, height } = img;
  const n = width * height;
  const data = Buffer.alloc(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    data[3 * i] = img.data[j + 3];
    data[3 * i + 1] = img.data[j + 2];
    data[3 * i + 2] = img.data[j + 1];
  }
  return { data, width, height };
}
