"""Autoregressive image models: p(x) = Π p(x_i | x_<i), pixel by pixel in raster order, channel by channel.

    pixelcnn.py          PixelCNN                 masked convolutions (masked.py)
    gated_pixelcnn.py    Gated PixelCNN           vertical + horizontal stacks, gates, class conditioning
    row_lstm.py          PixelRNN, Row LSTM       (pixelrnn.py: what the two PixelRNNs share)
    diagonal_bilstm.py   PixelRNN, Diagonal BiLSTM
    pixel_lstm.py        an LSTM over the flattened image
    base.py              what they share: likelihood, training step, sampling, completion
    pixels.py            Bernoulli or 256-way softmax per channel, or an N-way softmax over a palette
    sampling.py          naive and cached sampling, the same images from the same random numbers
"""
