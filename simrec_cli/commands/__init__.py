"""One module per CLI verb: parse arguments, build settings, call one core function, render the result."""
