"""The named data sets, each fetched or built on request from what this machine has or can get (a module
each, with `available()` and `load()`, `fetch()` where it is built into the cache), and the formats they
are read from (`idx`, `npm`)."""
