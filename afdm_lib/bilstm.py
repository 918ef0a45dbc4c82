"""A faster CPU path for the CRNN's bidirectional LSTM over variable-length sequences
(also used on CUDA, where packing costs host-device syncs).

``pack_padded_sequence -> nn.LSTM -> pad_packed_sequence`` is exact but slow on CPU:
PyTorch runs a packed LSTM step by step and its backward pass zero-fills and sums a
full-size gradient for every time step (quadratic in the length). Here each direction of
each layer is one call of the unpacked LSTM kernel (oneDNN on CPU) over the padded batch:

* forward direction: padding comes after the real steps, so it never reaches them;
* reverse direction: each sequence is reversed *within its own length* first (padding
  stays at the end), run forwards, and reversed back.

So every real output depends on exactly the same inputs and weights as in the packed
LSTM (equal up to float rounding; ``tests/test_bench.py`` checks values and gradients);
outputs past a sequence's length are zero, as ``pad_packed_sequence`` gives them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def supported(rnn: nn.LSTM) -> bool:
    """The layouts this path implements: bidirectional, time-major, biased, no projection
    or inter-layer dropout (the CRNN's LSTM)."""
    return (isinstance(rnn, nn.LSTM) and rnn.bidirectional and not rnn.batch_first
            and rnn.bias and rnn.proj_size == 0 and (rnn.dropout == 0 or not rnn.training))


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x`` (T, B, C) with the first ``lengths[b]`` steps of each column reversed and the
    rest left in place (its own inverse)."""
    t = torch.arange(x.shape[0], device=x.device)[:, None]
    n = lengths.to(x.device)[None, :]
    index = torch.where(t < n, n - 1 - t, t)
    return x.gather(0, index[:, :, None].expand_as(x))


def padded_bilstm(rnn: nn.LSTM, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``rnn`` over ``seq`` (T, B, C) whose column ``b`` is ``lengths[b]`` steps long; the
    same result as the packed LSTM padded back to T steps (zeros past each length)."""
    steps, batch = seq.shape[:2]
    lengths = lengths.to(device=seq.device, dtype=torch.long)
    h0 = seq.new_zeros(1, batch, rnn.hidden_size)
    x = seq
    for layer in range(rnn.num_layers):
        outs = []
        for suffix in ("", "_reverse"):
            weights = [getattr(rnn, f"{name}_l{layer}{suffix}")
                       for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            inp = reverse_within(x, lengths) if suffix else x
            out = torch.lstm(inp, (h0, h0), weights, True, 1, 0.0, rnn.training, False,
                             False)[0]
            outs.append(reverse_within(out, lengths) if suffix else out)
        x = torch.cat(outs, dim=2)
    valid = torch.arange(steps, device=seq.device)[:, None] < lengths[None, :]
    return x * valid[..., None]


def recurrent(rnn: nn.LSTM, seq: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Run ``rnn`` over ``seq`` (T x B x C) of which sample b has ``lengths[b]`` real
    frames (None: all T); returns T x B x (2 x hidden), zero past each length."""
    # the LSTM runs in fp32 even under bf16 autocast (`amp`): cuDNN before 9.13 has
    # no bf16 RNN, and the recurrence is the numerically delicate part
    with torch.autocast(seq.device.type, enabled=False):
        seq = seq.float()
        if lengths is not None and supported(rnn):
            # the same LSTM unpacked: much faster on CPU (this module); on CUDA it spares
            # the packed path's three host-device syncs per forward (lengths to the host,
            # the sort order to the device and back)
            out = padded_bilstm(rnn, seq, lengths.clamp(max=seq.shape[0]))
        elif lengths is not None:
            packed = pack_padded_sequence(seq, lengths.clamp(max=seq.shape[0]).cpu(),
                                          enforce_sorted=False)
            out, _ = rnn(packed)
            out, _ = pad_packed_sequence(out, total_length=seq.shape[0])
        else:
            out, _ = rnn(seq)
    return out
