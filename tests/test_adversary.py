"""The three methods differ only in their warp, and the adversary really is one.

Each test here kills at least one mutation of the method (see the module's names): the
sign of the adversary step, the p_warp fraction and the pass-through of unwarped
samples, a warp or train mode at evaluation, the test metric taken from the last state
instead of the best validation state, methods that differ before ``warmup_steps``, a
batch stream that depends on the method, a one-sided or mis-sized random warp, a bf16
warp, a warp that spans the padded batch, and an AFDM step that touches the recognizer.
"""

from __future__ import annotations

import copy

import pytest
import torch

from afdm_lib.adversarial import adversary_step, valid_columns, word_warp
from afdm_lib.afdm import AFDM
from afdm_lib.config import RunConfig
from afdm_lib.crnn import CRNN
from afdm_lib.data import collate, load_dataset
from afdm_lib.models import build_model
from afdm_lib.parts import load_splits
from afdm_lib.probe import adversary_probe
from afdm_lib.recognition import RecognitionTask
from afdm_lib.tasks import make_task
from afdm_lib.train import Trainer, train


def batch(n: int = 8, dataset: str = "digits-latin"):
    ds = load_dataset(dataset, split="train", size=n)
    return collate([ds[i] for i in range(n)]), ds.alphabet()


def fitted_crnn(images, widths, texts, chars, steps: int = 400):
    """A tiny CRNN that has fitted one batch (something for the adversary to break)."""
    torch.manual_seed(0)
    task = RecognitionTask(chars)
    model = build_model("crnn", task.num_outputs, width=0.125, batch_norm="crnn")
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(steps):
        opt.zero_grad()
        loss = task.loss(model, images, widths, texts)
        loss.backward()
        opt.step()
        if loss.item() < 0.3:
            break
    return task, model


# --- the adversary step ------------------------------------------------------------------
def test_the_afdm_step_raises_the_loss_it_is_trained_against():
    (images, widths, texts), chars = batch(4)
    task, model = fitted_crnn(images, widths, texts, chars)
    afdm = AFDM(model.afdm_channels, groups=2, max_shift=0.2, noise=0.0)
    opt_afdm = torch.optim.Adam(afdm.parameters(), lr=1e-2)
    warp = word_warp(afdm, widths, images.shape[-1], True, 1.0)
    live = word_warp(afdm, widths, images.shape[-1], frozen=False)

    def warped_loss() -> float:
        model.eval()
        with torch.no_grad():
            value = float(task.loss(model, images, widths, texts, warp))
        model.train()
        return value

    before = warped_loss()
    for _ in range(15):
        assert adversary_step(lambda: task.loss(model, images, widths, texts, live), model,
                              afdm, opt_afdm, penalty=0.0) is not None
    after = warped_loss()
    assert after > before * 1.5, (before, after)  # a minimising step lowers it


@pytest.mark.parametrize("raw, margin, pulled_back", [
    (1.0, 0.0, True),    # no margin: every output is pulled towards the identity warp
    (1.0, 1.5, False),   # inside the margin: the adversary's objective is the loss alone
    (2.0, 1.5, True)])   # beyond it: pulled back towards the margin
def test_the_penalty_acts_only_beyond_the_margin(raw, margin, pulled_back):
    (images, widths, texts), chars = batch(4)
    task, model = fitted_crnn(images, widths, texts, chars, steps=50)

    def bias_after_one_step(penalty: float) -> torch.Tensor:
        afdm = AFDM(model.afdm_channels, groups=2, noise=0.0, loc_bias=True)
        torch.nn.init.constant_(afdm.loc.out.bias, raw)  # weights 0: raw = bias for every word
        opt = torch.optim.SGD(afdm.parameters(), lr=1.0)
        warp = word_warp(afdm, widths, images.shape[-1], frozen=False)
        adversary_step(lambda: task.loss(model, images, widths, texts, warp), model, afdm,
                       opt, penalty=penalty, margin=margin)
        return afdm.loc.out.bias.detach().clone()

    loss_only, penalised = bias_after_one_step(0.0), bias_after_one_step(10.0)
    if pulled_back:  # SGD lr 1: the penalty's gradient 10 x 2 x excess / n moves each bias
        excess = raw - margin
        n = loss_only.numel()
        assert torch.allclose(loss_only - penalised, torch.full_like(loss_only,
                              10.0 * 2 * excess / n), atol=1e-6)
    else:
        assert torch.equal(loss_only, penalised)


@pytest.mark.parametrize("reuse", [False, True])
def test_the_afdm_step_leaves_the_recognizer_untouched(reuse):
    (images, widths, texts), chars = batch(8)
    task = RecognitionTask(chars)
    model = build_model("crnn", task.num_outputs, width=0.125)  # BatchNorm everywhere
    afdm = AFDM(model.afdm_channels, groups=2)
    t_a = model.features_a(images).detach() if reuse else None  # (moves BN statistics)
    before = copy.deepcopy(model.state_dict())
    warp = word_warp(afdm, widths, images.shape[-1], frozen=False)
    adversary_step(lambda: task.loss(model, images, widths, texts, warp, t_a=t_a), model,
                   afdm, torch.optim.Adam(afdm.parameters()))
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key in before:  # weights, running statistics and num_batches_tracked
        assert torch.equal(before[key], after[key]), key
    assert all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())  # no recognizer backward at all
    assert model.training


def test_the_cheaper_step_computes_the_exact_steps_gradient():
    # reusing T_A's output of the same batch and weights gives the same adversary gradient
    (images, widths, texts), chars = batch(6)
    task = RecognitionTask(chars)
    model = build_model("crnn", task.num_outputs, width=0.125)
    afdm = AFDM(model.afdm_channels, groups=2, noise=0.0)
    torch.nn.init.normal_(afdm.loc.out.weight, std=0.1)
    model.requires_grad_(False)
    grads = []
    for t_a in (None, model.features_a(images).detach()):
        afdm.zero_grad()
        warp = word_warp(afdm, widths, images.shape[-1], False, 1.0)
        task.loss(model, images, widths, texts, warp, t_a=t_a).backward()
        grads.append(afdm.loc.out.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


# --- the warp handed to the recognizer ----------------------------------------------------
def test_p_warp_warps_that_fraction_and_passes_the_rest_through():
    afdm = AFDM(8, groups=2, mode="random", max_shift=0.3)
    f = torch.randn(400, 8, 4, 12)
    widths = torch.full((400,), 48)
    out = word_warp(afdm, widths, 48, True, 0.25, torch.Generator().manual_seed(0))(f)
    same = (out == f).flatten(1).all(1)
    assert 0.18 < 1 - same.float().mean() < 0.32  # about a quarter warped
    changed = ~same
    assert ((out[changed] - f[changed]).abs().flatten(1).amax(1) > 1e-3).all()
    # p_warp 1 warps everything
    out = word_warp(afdm, widths, 48, True, 1.0)(f)
    assert not (out == f).flatten(1).all(1).any()


def test_random_and_afdm_warp_the_same_samples():
    # masks come from the trainer's generator, not from the global RNG the warps use
    masks = []
    for mode in ("random", "adversarial"):
        gen = torch.Generator().manual_seed(3)
        afdm = AFDM(8, groups=2, mode=mode, max_shift=0.3, loc_bias=True)
        if afdm.loc is not None:
            torch.nn.init.normal_(afdm.loc.out.bias, std=1.0)
        f = torch.randn(64, 8, 4, 12)
        out = word_warp(afdm, torch.full((64,), 48), 48, True, 0.5, gen)(f)
        masks.append((out == f).flatten(1).all(1))
    assert torch.equal(masks[0], masks[1])


@pytest.mark.parametrize("shift,mean_rel", [("uniform", 0.5), ("sign", 0.4)])
def test_random_displacements_are_symmetric_and_of_the_stated_size(shift, mean_rel):
    afdm = AFDM(8, groups=4, mode="random", max_shift=0.2, random_shift=shift,
                random_scale=0.4)
    afdm.generator = torch.Generator().manual_seed(0)
    d = afdm.displacements(torch.zeros(2000, 8, 2, 2))
    rel = d.abs() / 0.2
    assert rel.max() <= 1.0 + 1e-6
    assert rel.mean() == pytest.approx(mean_rel, abs=0.01)
    assert abs(float(d.mean())) < 0.005  # both directions, evenly
    assert (d > 0).float().mean() == pytest.approx(0.5, abs=0.02)
    if shift == "sign":
        assert torch.allclose(rel, torch.full_like(rel, 0.4))


def test_the_warp_runs_in_fp32_under_bf16_autocast():
    afdm = AFDM(16, groups=4, loc_bias=True)  # identity at initialisation
    f = torch.randn(3, 16, 8, 30).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = afdm(f, valid=torch.tensor([30, 22, 9]))
    assert out.dtype == torch.bfloat16
    # identity up to float noise (a bf16 grid and sampler: mean relative error ~7%)
    err = (out.float() - f.float()).abs()
    assert err.max() < 1e-4
    assert (err / f.float().abs().clamp_min(1e-3)).mean() < 1e-5
    # and with a real warp, bf16 in gives the fp32 warp rounded once
    torch.nn.init.normal_(afdm.loc.out.bias, std=0.5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = afdm(f).float()
    high = afdm(f.float())
    assert (low - high).abs().max() <= 0.02 * high.abs().max()


def test_each_word_is_warped_over_its_own_width():
    torch.manual_seed(0)
    afdm = AFDM(4, groups=1, mode="adversarial", max_shift=0.3, loc_bias=True)
    torch.nn.init.normal_(afdm.loc.out.bias, std=1.0)  # a fixed, input-independent warp
    afdm.loc.out.weight.data.zero_()
    narrow = torch.randn(1, 4, 6, 10)
    wide = torch.randn(1, 4, 6, 25)
    padded = torch.cat([torch.nn.functional.pad(narrow, (0, 15)), wide])
    padded[0, :, :, 10:] = 0.7  # what convs make of padding: not zero
    out = afdm(padded, frozen=True, valid=torch.tensor([10, 25]))
    alone = afdm(narrow, frozen=True, valid=torch.tensor([10]))
    # the narrow word is warped exactly as if it were alone: its batch-mates do not matter
    assert torch.allclose(out[0, :, :, :10], alone[0], atol=1e-5)
    assert torch.equal(out[0, :, :, 10:], padded[0, :, :, 10:])  # padding passes through
    # nothing of the padding is read into the word: its values stay within its own range
    assert out[0, :, :, :10].abs().max() <= narrow.abs().max() + 1e-5
    assert torch.allclose(out[1], afdm(wide, frozen=True, valid=torch.tensor([25]))[0],
                          atol=1e-5)


def test_the_trainers_warp_hands_each_words_width_to_the_module():
    torch.manual_seed(0)
    afdm = AFDM(4, groups=1, max_shift=0.3, loc_bias=True)
    torch.nn.init.normal_(afdm.loc.out.bias, std=1.0)  # a fixed warp
    f = torch.randn(2, 4, 6, 25)
    f[0, :, :, 10:] = 0.7  # the first word fills 10 of 25 columns (40 of 100 pixels)
    out = word_warp(afdm, torch.tensor([40, 100]), 100, True, 1.0)(f)
    assert torch.equal(out[0, :, :, 10:], f[0, :, :, 10:])  # its padding is untouched
    alone = afdm(f[:1, :, :, :10], frozen=True, valid=torch.tensor([10]))
    assert torch.allclose(out[0, :, :, :10], alone[0], atol=1e-5)


def test_valid_columns_follow_the_feature_maps_downsampling():
    widths = torch.tensor([100, 64, 7])
    assert valid_columns(widths, 100, 25).tolist() == [25, 16, 2]


# --- the same batches, the same start -----------------------------------------------------
def _trace(monkeypatch, cfg, tmp_path):
    seen: list[tuple[str, ...]] = []
    original = Trainer.recognizer_step

    def step(self, images, widths, texts, warped=False):
        seen.append(tuple(texts))
        return original(self, images, widths, texts, warped)

    monkeypatch.setattr(Trainer, "recognizer_step", step)
    record = train(cfg, tmp_path)
    monkeypatch.setattr(Trainer, "recognizer_step", original)
    return seen, record


def test_every_method_trains_the_recognizer_on_the_same_batch_stream(tmp_path, monkeypatch,
                                                                    tiny_cfg):
    cfg = tiny_cfg.replace(epochs=3, warmup_steps=2, afdm_warmup_steps=3, eval_every=4)
    streams = {m: _trace(monkeypatch, cfg.replace(method=m), tmp_path / m)
               for m in ("none", "random", "afdm")}
    assert len(streams["none"][0]) == 12  # 64 words, batch 16, 3 epochs
    assert streams["afdm"][0] == streams["none"][0] == streams["random"][0]
    assert streams["afdm"][1]["metrics"]["afdm_steps"] >= 3 + 10  # warm-up + alternation


def test_each_afdm_turn_takes_afdm_steps_updates_on_the_recognizer_batch(tmp_path,
                                                                         monkeypatch, tiny_cfg):
    cfg = tiny_cfg.replace(epochs=3, warmup_steps=2, afdm_warmup_steps=3, method="afdm",
                           afdm_steps=1)
    turns = []
    original = Trainer.adversary_step

    def afdm_step(self, images, widths, texts, t_a=None):
        turns.append((self.state.step, tuple(texts)))
        return original(self, images, widths, texts, t_a)

    monkeypatch.setattr(Trainer, "adversary_step", afdm_step)
    one = train(cfg, tmp_path / "k1")["metrics"]["afdm_steps"]
    alternating = [t for t in turns if t[0] > cfg.warmup_steps]
    turns.clear()
    three = train(cfg.replace(afdm_steps=3), tmp_path / "k3")["metrics"]["afdm_steps"]
    assert three - 3 == 3 * (one - 3)  # the warm-up is not multiplied
    # each turn: three updates on the batch the recognizer just trained on
    assert [t for t in turns if t[0] > cfg.warmup_steps] == [t for t in alternating
                                                            for _ in range(3)]


def test_the_methods_are_identical_until_warmup_ends(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(epochs=2, warmup_steps=6, max_steps=6, eval_every=3)
    records = {m: train(cfg.replace(method=m), tmp_path / m) for m in ("none", "random", "afdm")}
    states = {m: torch.load(tmp_path / m / "checkpoint.pt", weights_only=True)["model"]
              for m in records}
    for key, value in states["none"].items():
        assert torch.equal(value, states["random"][key]), key
        assert torch.equal(value, states["afdm"][key]), key
    losses = {m: [c["train_loss"] for c in r["curve"]] for m, r in records.items()}
    assert losses["none"] == losses["random"] == losses["afdm"]


# --- evaluation ---------------------------------------------------------------------------
def test_evaluation_runs_in_eval_mode_without_a_warp(tmp_path, tiny_cfg, monkeypatch):
    calls = []
    original_forward = CRNN.forward

    def forward(self, x, widths=None, warp=None, t_a=None):
        if not torch.is_grad_enabled() and warp is None:
            calls.append(("plain", self.training))
        elif not torch.is_grad_enabled():
            calls.append(("warped", self.training))
        return original_forward(self, x, widths, warp, t_a)

    original_predict = RecognitionTask.predict

    def predict(self, model, images, widths):
        calls.append(("predict", model.training))
        return original_predict(self, model, images, widths)

    monkeypatch.setattr(CRNN, "forward", forward)
    monkeypatch.setattr(RecognitionTask, "predict", predict)
    train(tiny_cfg.replace(method="afdm", epochs=2, eval_every=2), tmp_path)
    predicts = [c for c in calls if c[0] == "predict"]
    assert predicts and not any(training for _, training in predicts)
    # every no-grad forward in train mode would be a leak; warped no-grad forwards are
    # the probe's, in eval mode too
    assert not any(training for kind, training in calls if kind in ("plain", "warped"))
    n_plain = sum(kind == "plain" for kind, _ in calls)
    assert n_plain >= len(predicts)  # every decoding forward is unwarped


def test_the_test_metric_comes_from_the_best_validation_state(tmp_path, tiny_cfg,
                                                              monkeypatch):
    scripted = iter([0.5, 0.2, 0.6, 0.7, 0.8, 0.9])  # best at the second validation
    states, tested = [], []
    original = RecognitionTask.evaluate

    def evaluate(self, model, loader, device, examples=0):
        out = original(self, model, loader, device, examples)
        split = loader.dataset.split
        if split == "val":
            states.append(copy.deepcopy(model.state_dict()))
            out["cer"] = next(scripted)
        elif examples:  # the test split, evaluated once at the end
            tested.append(copy.deepcopy(model.state_dict()))
        return out

    monkeypatch.setattr(RecognitionTask, "evaluate", evaluate)
    record = train(tiny_cfg.replace(epochs=3, eval_every=2), tmp_path)
    assert len(states) >= 3 and len(tested) == 1
    assert record["metrics"]["best_step"] == record["curve"][1]["step"]
    best, last = states[1], states[-1]
    assert any(not torch.equal(best[k], last[k]) for k in best)
    assert all(torch.equal(tested[0][k], best[k]) for k in best)


# --- the probe ----------------------------------------------------------------------------
def test_the_probe_tells_a_collapsed_adversary_from_an_active_one():
    (images, widths, texts), chars = batch(8)
    task, model = fitted_crnn(images, widths, texts, chars, steps=150)
    collapsed = AFDM(model.afdm_channels, groups=2, max_shift=0.2, loc_bias=True)
    torch.nn.init.constant_(collapsed.loc.out.bias, 50.0)  # one saturated corner warp
    p = adversary_probe(task, model, collapsed, images, widths, texts)
    assert p["saturated"] == 1.0 and p["diversity"] < 1e-4 and p["shift_rel"] > 0.99
    active = AFDM(model.afdm_channels, groups=2, max_shift=0.2, loc_norm=True, loc_bias=True)
    torch.nn.init.normal_(active.loc.out.weight, std=1.0)
    with torch.no_grad():  # running statistics of these words for the normalised net
        active.loc.norm.momentum = None
        active.loc(model.features_a(images))
    p = adversary_probe(task, model, active, images, widths, texts)
    assert p["saturated"] < 0.9 and p["diversity"] > 0.05
    for key in ("loss_clean", "loss_random", "loss_afdm", "loss_random_matched", "clamped"):
        assert key in p
    assert model.training and active.training  # modes restored


def test_the_probe_reads_the_warp_training_uses_and_leaves_the_module_as_it_was():
    # the localisation net's BatchNorm normalises with the batch's statistics in every
    # training warp; its running statistics lag a fast adversary. Lagging statistics
    # (here: far off) must not change what the probe reads, and the probe changes none
    (images, widths, texts), chars = batch(8)
    task, model = fitted_crnn(images, widths, texts, chars, steps=30)
    active = AFDM(model.afdm_channels, groups=2, max_shift=0.2, loc_norm=True, loc_bias=False)
    torch.nn.init.normal_(active.loc.out.weight, std=1.0)
    norm = active.loc.norm
    norm.running_mean.fill_(1e4)  # in eval mode: every word pushed into saturation
    before = {k: v.clone() for k, v in active.state_dict().items()}
    p = adversary_probe(task, model, active, images, widths, texts)
    assert p["batch_stats"] == 1.0
    assert p["saturated"] < 0.9 and p["diversity"] > 0.05, p
    for k, v in active.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert norm.momentum == 0.1 and active.training


# --- collapse -----------------------------------------------------------------------------
COLLAPSE_RUN = dict(dataset="digits-latin", train_size=200, val_size=32, test_size=32,
                    width=0.125, batch_size=16, lr=6e-3, lr_warmup_steps=100, epochs=100,
                    warmup_steps=300, afdm_warmup_steps=150, max_steps=301, eval_every=301,
                    method="afdm", seed=1, quiet=True)


def collapse_probe(tmp_path, **changes) -> dict:
    """A recognizer trained alone for 300 steps, then 150 AFDM steps against it, then the
    probe: what the adversary learned to do to the current recognizer."""
    record = train(RunConfig(**{**COLLAPSE_RUN, **changes}), tmp_path)
    assert record["metrics"]["afdm_steps"] >= 150
    return record["curve"][-1]["probe"]


def test_the_adversary_does_not_collapse_to_one_saturated_warp(tmp_path):
    p = collapse_probe(tmp_path)
    assert p["loss_clean"] < 1.5, f"the recognizer learned too little to attack: {p}"
    assert p["saturated"] < 0.5, p  # the tanh still passes gradient
    # the warp depends on the word: measured 0.29 with the defaults (saturated 0.40), 0.000
    # with neither anti-collapse setting, 0.061 with the penalty alone, 0.038 with
    # penalty and noise (those three at afdm_lr 1e-3, one update per turn)
    assert p["diversity"] > 0.1, p
    assert p["loss_afdm"] > p["loss_random"], p  # it is adversarial: worse than chance


def test_a_round_runs_t_a_once_and_updates_the_afdm_to_the_same_bits(tmp_path):
    # the trainer gives a round's k adversary updates one T_A forward (the recognizer is
    # frozen through the round): the AFDM ends exactly where k updates that each ran T_A
    # would leave it; the recognizer step's own T_A (before its update) would not
    cfg = RunConfig(dataset="digits-latin", train_size=16, val_size=8, test_size=8,
                    batch_size=8, width=0.125, method="afdm", warmup_steps=0,
                    afdm_warmup_steps=0, afdm_steps=3, quiet=True)
    trainer = Trainer(cfg, tmp_path, progress=False)
    split = load_splits(cfg)[0]
    parts = trainer.build(make_task(cfg, split), torch.device("cpu"))
    torch.nn.init.normal_(parts.afdm.loc.out.weight, std=0.1)
    images, widths, texts = collate([split[i] for i in range(8)])
    trainer.recognizer_step(images, widths, texts, warped=True)
    kept = trainer.kept["t_a"]
    saved = (copy.deepcopy(parts.afdm.state_dict()), copy.deepcopy(parts.opt_afdm.state_dict()),
             copy.deepcopy(parts.model.state_dict()), trainer.draw_gen.get_state())

    def run(t_a_of):
        parts.afdm.load_state_dict(saved[0])
        parts.opt_afdm.load_state_dict(saved[1])
        trainer.draw_gen.set_state(saved[3])
        t_a = t_a_of()
        for _ in range(cfg.afdm_steps):
            trainer.adversary_step(images, widths, texts, t_a=t_a)
        for key, value in parts.model.state_dict().items():  # the recognizer untouched
            assert torch.equal(value, saved[2][key]), key
        return {k: v.clone() for k, v in parts.afdm.state_dict().items()}

    each = run(lambda: None)
    once = run(lambda: trainer.round_t_a(images))
    assert all(torch.equal(each[k], once[k]) for k in each)
    stale = run(lambda: kept)  # the cheaper step's T_A: computed before the update
    assert not all(torch.equal(each[k], stale[k]) for k in each)
    # one update per round: nothing to share, each update runs T_A itself
    assert Trainer(cfg.replace(afdm_steps=1), tmp_path / "k1").round_t_a(images) is None
