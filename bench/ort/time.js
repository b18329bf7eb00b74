// Times ONNX Runtime's inference of one model (bench/ort/run.sh):
//   node time.js MODEL.onnx SAMPLE_SHAPE THREADS BATCH CALLS
// SAMPLE_SHAPE is one sample's dimensions joined by 'x' (784, or 1x28x28); THREADS ONNX Runtime's
// intra-op threads. Runs CALLS / 10 warm-up calls, then CALLS timed calls of BATCH random samples, and
// prints predict_us_per_sample=... (wall time per sample).
const ort = require('onnxruntime-node');

async function main() {
    const [model, shape, threads, batch, calls] = process.argv.slice(2);
    if (!calls) {
        console.error('usage: node time.js MODEL.onnx SAMPLE_SHAPE THREADS BATCH CALLS');
        process.exit(2);
    }
    const dims = shape.split('x').map(Number), n = Number(batch), count = Number(calls);
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    const size = n * dims.reduce((a, b) => a * b, 1), data = new Float32Array(size);
    for (let i = 0; i < size; i++)
        data[i] = Math.random();
    const feeds = {x: new ort.Tensor('float32', data, [n, ...dims])};
    for (let i = 0; i < Math.max(1, Math.floor(count / 10)); i++)
        await session.run(feeds);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++)
        await session.run(feeds);
    const us = Number(process.hrtime.bigint() - t0) / 1e3;
    console.log(`predict_us_per_sample=${(us / (count * n)).toFixed(4)}`);
}

main().catch((e) => {
    console.error(`time.js: ${e.message}`);
    process.exit(1);
});
