/**
 * The IDX format of MNIST and Fashion-MNIST (gzipped or not): a 4-byte magic (0, 0, type, number
 * of dimensions), big-endian uint32 dimensions, then the values. And Fashion-MNIST itself, from a
 * folder you give, GRADCOMP_FASHION_MNIST, or Debian's dataset-fashion-mnist package
 * (/usr/share/datasets/fashion-mnist).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants } from 'node:buffer';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { checkOptions, GradcompError, rangeError, typeError } from '../native/errors';
import { readRegularFile } from '../checkpoint/file';

export interface IdxArray { dtype: 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64'; shape: number[]; data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array }

const TYPES: Record<number, [IdxArray['dtype'], number]> = { 0x08: ['uint8', 1], 0x09: ['int8', 1], 0x0b: ['int16', 2], 0x0c: ['int32', 4], 0x0d: ['float32', 4], 0x0e: ['float64', 8] };

const bad = (file: string, why: string) => new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `${file}: not a valid IDX file: ${why}`, 'file');

/** The largest IDX file read: what one Buffer can hold. */
const MAX_IDX_BYTES = Math.min(constants.MAX_LENGTH, 2 ** 32);

/** The element type and shape from the first bytes of an IDX file (the values need not be there). */
function parseHeader(bytes: Uint8Array, name: string): { t: [IdxArray['dtype'], number]; shape: number[]; count: number; start: number } {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw bad(name, 'wrong magic number');
  const t = TYPES[bytes[2]], dims = bytes[3];
  if (!t) throw bad(name, `unknown element type 0x${bytes[2].toString(16)}`);
  if (dims < 1 || bytes.length < 4 + 4 * dims) throw bad(name, 'truncated header');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: dims }, (_, i) => dv.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1), start = 4 + 4 * dims;
  if (start + count * t[1] > MAX_IDX_BYTES) throw bad(name, `its shape [${shape.join(', ')}] needs more than ${MAX_IDX_BYTES} bytes`);
  return { t, shape, count, start };
}

/** The first bytes a gzipped IDX file inflates to (at least its header where it has one), from growing prefixes, never more than 64 MiB. */
function gunzipHead(raw: Uint8Array, name: string): Uint8Array {
  for (let take = 4096; ; take *= 4) {
    let out: Uint8Array;
    try {
      out = gunzipSync(raw.subarray(0, take), { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 64 << 20 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw bad(name, 'no IDX header in the first 64 MiB it inflates to');
      throw bad(name, `gzip: ${(e as Error).message}`);
    }
    if (take >= raw.length || (out.length >= 4 && out.length >= 4 + 4 * out[3])) return out;
  }
}

/** The shape an IDX file's header gives (gunzipping only as far as the header), without reading its values. */
export function idxShape(file: string): number[] {
  const raw = readRaw(file);
  return parseHeader(isGzip(raw) ? gunzipHead(raw, file) : raw, file).shape;
}

function readRaw(file: string): Uint8Array {
  return readRegularFile(file, (why) => new GradcompError('ERR_GRADCOMP_INVALID_ARG', `cannot read ${file}: ${why}`, 'file'));
}

const isGzip = (raw: Uint8Array): boolean => raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;

/** Reads an IDX file (or its bytes), gunzipping when it starts with the gzip magic. */
export function readIdx(file: string | Uint8Array, name = typeof file === 'string' ? file : 'IDX data'): IdxArray {
  let raw: Uint8Array;
  if (typeof file === 'string') raw = readRaw(file);
  else if (file instanceof Uint8Array) raw = file;
  else throw typeError('file', 'a path or a Uint8Array', file);
  const gz = isGzip(raw);
  // A gzipped file is inflated only as far as its header says it reaches: first a prefix, for the
  // header, then the whole with the output capped at the size the header gives, so a small file
  // that inflates to gigabytes (a decompression bomb) is refused before it is held in memory.
  const head = gz ? gunzipHead(raw, name) : raw;
  const { t, shape, count, start } = parseHeader(head, name);
  let bytes = raw;
  if (gz) {
    const want = start + count * t[1];
    try { bytes = gunzipSync(raw, { maxOutputLength: want }); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw bad(name, `it inflates to more than the ${want} bytes its shape [${shape.join(', ')}] gives`);
      throw bad(name, `gzip: ${(e as Error).message}`);
    }
  }
  if (bytes.length !== start + count * t[1]) throw bad(name, `its ${bytes.length - start} value bytes do not match the shape [${shape.join(', ')}]`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [dtype, size] = t;
  let data: IdxArray['data'];
  if (dtype === 'uint8') data = bytes.slice(start);
  else if (dtype === 'int8') data = new Int8Array(bytes.slice(start).buffer);
  else {
    const Ctor = { int16: Int16Array, int32: Int32Array, float32: Float32Array, float64: Float64Array }[dtype];
    data = new Ctor(count);
    for (let i = 0; i < count; i++) {
      const at = start + i * size;
      data[i] = dtype === 'int16' ? dv.getInt16(at, false) : dtype === 'int32' ? dv.getInt32(at, false) : dtype === 'float32' ? dv.getFloat32(at, false) : dv.getFloat64(at, false);
    }
  }
  return { dtype, shape, data };
}

export interface ImageSplit {
  /** count x rows x cols pixels scaled to [0, 1], row-major. */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}
export interface FashionMnist { train: ImageSplit; test: ImageSplit; classes: string[]; dir: string }

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
export const FASHION_MNIST_DIRS = ['/usr/share/datasets/fashion-mnist'];

/** The file `base` in `dir`, plain or gzipped, if there. */
export function findFile(dir: string, base: string): string | undefined {
  return [base, `${base}.gz`].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
}

function split(dir: string, prefix: 'train' | 't10k', limit: number | undefined): ImageSplit {
  const imgFile = findFile(dir, `${prefix}-images-idx3-ubyte`)!, labFile = findFile(dir, `${prefix}-labels-idx1-ubyte`)!;
  const img = readIdx(imgFile), lab = readIdx(labFile);
  if (img.dtype !== 'uint8' || img.shape.length !== 3) throw bad(imgFile, `expected uint8 images [count, rows, cols], found ${img.dtype} [${img.shape.join(', ')}]`);
  if (lab.dtype !== 'uint8' || lab.shape.length !== 1 || lab.shape[0] !== img.shape[0]) throw bad(labFile, `expected ${img.shape[0]} uint8 labels`);
  const [n0, rows, cols] = img.shape, count = Math.min(n0, limit ?? n0);
  const px = img.data as Uint8Array, images = new Float32Array(count * rows * cols);
  for (let i = 0; i < images.length; i++) images[i] = px[i] / 255;
  return { images, labels: (lab.data as Uint8Array).slice(0, count), count, rows, cols };
}

/**
 * Fashion-MNIST (60000 training and 10000 test images of 28 x 28, 10 classes) from `dir`, else
 * GRADCOMP_FASHION_MNIST, else Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
 * The four IDX files keep their original names, gzipped or not. `limit` reads only the first
 * images of each split.
 */
export function loadFashionMnist(dir?: string, options: { trainLimit?: number; testLimit?: number } = {}): FashionMnist {
  const src = imageSource('fashion-mnist', dir);
  return loadIdxImages(src.candidates, options, src.classes, src.howTo);
}

/** MNIST's files (the same four names) from `dir` or GRADCOMP_MNIST. */
export function loadMnist(dir?: string, options: { trainLimit?: number; testLimit?: number } = {}): FashionMnist {
  const src = imageSource('mnist', dir);
  return loadIdxImages(src.candidates, options, src.classes, src.howTo);
}

/** Where each kind of image data is looked for, its class names, and how to get it when it is absent. */
export function imageSource(kind: 'fashion-mnist' | 'mnist' | 'idx', dir?: string): { candidates: string[]; classes: string[]; howTo: string } {
  if (dir !== undefined && typeof dir !== 'string') throw typeError('dir', 'a folder', dir);
  const digits = Array.from({ length: 10 }, (_, i) => String(i));
  if (kind === 'fashion-mnist') {
    return { candidates: dir !== undefined ? [dir] : [process.env.GRADCOMP_FASHION_MNIST, ...FASHION_MNIST_DIRS].filter((d): d is string => !!d), classes: FASHION_MNIST_CLASSES,
      howTo: 'On Debian or Ubuntu: apt-get install dataset-fashion-mnist; elsewhere download the four files from https://github.com/zalandoresearch/fashion-mnist ' +
        'into a folder and pass it (or set GRADCOMP_FASHION_MNIST).' };
  }
  if (kind === 'mnist') {
    return { candidates: [dir ?? process.env.GRADCOMP_MNIST].filter((d): d is string => !!d), classes: digits,
      howTo: 'Download the four MNIST files (train-images-idx3-ubyte.gz, ...) into a folder and pass it (--data-dir DIR, or set GRADCOMP_MNIST).' };
  }
  return { candidates: dir !== undefined ? [dir] : [], classes: digits, howTo: 'Give --data-dir a folder with the four MNIST-format files.' };
}

const IDX_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

/** The first candidate folder that has the four files, or a coded error saying what is missing and how to get it. */
export function findIdxFolder(candidates: string[], howTo: string): string {
  const found = candidates.find((d) => IDX_FILES.every((f) => findFile(d, f)));
  if (!found) {
    throw new GradcompError('ERR_GRADCOMP_INVALID_ARG', `image data not found in ${candidates.join(', ') || '(no folder given)'}: it needs ${IDX_FILES.join(', ')} (each may be .gz). ` +
      howTo, 'dir');
  }
  return found;
}

/** Any folder with the four MNIST-format files (train-/t10k- images and labels). */
export function loadIdxImages(candidates: string[], options: { trainLimit?: number; testLimit?: number }, classes: string[], howTo: string): FashionMnist {
  if (options === null || typeof options !== 'object') throw typeError('options', 'an object ({ trainLimit?, testLimit? })', options);
  checkOptions(options, 'options', ['trainLimit', 'testLimit']);
  for (const k of ['trainLimit', 'testLimit'] as const) {
    const v = options[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) throw rangeError(`options.${k}`, 'an integer >= 0 (how many images to read)', v);
  }
  const found = findIdxFolder(candidates, howTo);
  const train = split(found, 'train', options.trainLimit), test = split(found, 't10k', options.testLimit);
  if (train.rows !== test.rows || train.cols !== test.cols) {
    throw new GradcompError('ERR_GRADCOMP_CORRUPT_PAYLOAD', `${found}: the training images are ${train.rows} x ${train.cols} but the test images ${test.rows} x ${test.cols}`, 'dir');
  }
  return { train, test, classes, dir: found };
}
