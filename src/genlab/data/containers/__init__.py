"""Data held in memory and how it reaches a model: image data sets (`base`), sound clips (`audio`; WAV
files, a folder of them and the pictures of clips in `audio_files`), video clips (`video`), each with the
Info a model builds itself from (`info` reads any of them back); `Batch` and the batchers (`loader`);
image files read and written (`images`), palettes (`palette`), and a folder of the user's images
(`folder`)."""
