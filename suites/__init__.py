"""The suite files shipped with dreamer-bench (installed from the repository's suites/)."""
