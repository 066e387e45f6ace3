/**
 * TensorFlow.js is an optional peer dependency: loaded on first use, from the application's own
 * install (so gradcomp's layers and optimizer extend the very classes the user's model uses), with
 * a coded error saying what to install when it is absent.
 */
import { GradcompError } from '../../native/errors';
import type * as TfCore from '@tensorflow/tfjs-core';
import type * as TfLayers from '@tensorflow/tfjs-layers';

export type Tf = typeof TfCore;
export type TfL = typeof TfLayers;

let core: Tf | undefined, layers: TfL | undefined;

export function tfCore(): Tf {
  if (!core) {
    try { core = require('@tensorflow/tfjs-core') as Tf; } catch (e) {
      throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', 'gradcomp/tfjs needs TensorFlow.js: npm install @tensorflow/tfjs ' +
        `(or @tensorflow/tfjs-core with a backend such as @tensorflow/tfjs-backend-cpu) (${(e as Error).message.split('\n')[0]})`);
    }
  }
  return core;
}

export function tfLayers(): TfL {
  if (!layers) {
    tfCore();
    try { layers = require('@tensorflow/tfjs-layers') as TfL; } catch (e) {
      throw new GradcompError('ERR_GRADCOMP_BACKEND_UNAVAILABLE', 'gradcomp/tfjs layers need @tensorflow/tfjs-layers (part of @tensorflow/tfjs): ' +
        `npm install @tensorflow/tfjs (${(e as Error).message.split('\n')[0]})`);
    }
  }
  return layers;
}
