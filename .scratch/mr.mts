import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../src/io/checkpoint';
import { embeddingMeanRow } from '../src/cram/embedding';
const { model } = await loadModel('/work/shared/models/stories260K');
const a = tf.mean(model.embedMatrix, 0).dataSync() as Float32Array;
const b = embeddingMeanRow(model);
let md = 0, mx = 0; for (let i = 0; i < a.length; i++) { md = Math.max(md, Math.abs(a[i] - b[i])); mx = Math.max(mx, Math.abs(a[i])); }
console.log(a.length, b.length, 'maxdiff', md, 'max|mean|', mx, a.slice(0, 4), b.slice(0, 4), model.embedMatrix.shape);
