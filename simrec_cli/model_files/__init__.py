"""Model files: a checkpoint or an exported model opened in the runtime asked for, or the fastest one this machine
runs (`loading`), and evaluated there on a dataset's splits (`evaluation`).

This package stands above the runtimes (which run a model), export (which converts a checkpoint for OpenVINO when
`auto` measures it) and the engine (which reads checkpoints and evaluates batches).
"""
