"""Captions of images, for a text-to-image model: what genlab measures on each image (`measures`), written
as short sentences of a small grammar (`grammar`); or the user's own captions (`file`: `captions:FILE`,
lines of PATH<TAB>CAPTION); and each split's captions as the batches of a run (`batches`)."""
