"""`simrec serve`: a trained model behind an HTTP API and a web page, answering concurrent requests in batches.

`options` holds the server's settings and limits, `model` loads a checkpoint (or an exported ONNX file) behind
one small interface, `uploads` turns request bodies into checked, letterboxed images, `batcher` gathers the
expressions of concurrent requests into shared forward passes, `answers` turns raw outputs into the records of
`simrec predict --json`, `metrics` keeps the Prometheus counters, `app` is the FastAPI application and `server`
runs it under uvicorn. FastAPI and uvicorn come with the `serve` extra and are imported only here.
"""
