"""Lines of text: tokens and the vocabulary (`vocab`), a corpus split once and for all (`dataset`), and
its batches of token ids (`batches`)."""
