"""No training path hard-codes a device or a dtype.

On a CPU machine "cpu" and float32 are also the right answers, so a hard-coded value would
pass every other test. Here the one place each choice is made is replaced by a sentinel
(``medllm.train.base.training_dtype``, ``medllm.models.hardware.accelerator`` /
``local_device``, ``medllm.models.model_device``), and the test checks that exactly that
value reaches the loader, the trainer's arguments and the input tensors. Stages stop right
after their TrainingArguments are built: nothing trains."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from medllm.config.model import ModelConfig
from medllm.config.train import DPOStage, PretrainStage, RejectionSamplingStage, RewardStage, SFTStage
from medllm.train import run_stage

FAST = dict(max_steps=1, batch_size=2, log_every=1, max_samples=4)
SENTINEL_DTYPE = torch.float16   # never chosen for training on a CPU: only the sentinel can put it there
SENTINEL_DEVICE = "cpu:1"        # a real CPU device, but a different string from a hard-coded "cpu"


class Stop(Exception):
    """Raised once the trainer's arguments exist."""


def _stages(reward_dir=None):
    return {
        "sft": (SFTStage(data=["d"], **FAST), "d"),
        "pretrain": (PretrainStage(data=["t"], max_seq_len=16, **FAST), "t"),
        "dpo": (DPOStage(data=["p"], **FAST), "p"),
        "reward": (RewardStage(data=["p"], **FAST), "p"),
        "rejection_sampling": (RejectionSamplingStage(data=["d"], k=2, max_new_tokens=3, scorer="rule", **FAST), "d"),
    }


@pytest.fixture
def spies(monkeypatch):
    """Records every base-weight load (dtype, device) and the trainer's arguments, then stops."""
    import medllm.models.loading as loading
    import medllm.train.stage as stage

    seen = {"loads": [], "args": None}
    real_load, real_args = loading._from_pretrained, stage.training_args

    def load(folder, torch_dtype, *, quantize, device, cls=None, **extra):
        seen["loads"].append({"dtype": torch_dtype, "device": device, "cls": getattr(cls, "__name__", None)})
        return real_load(folder, torch_dtype, quantize=quantize, device=device, cls=cls, **extra)

    def args(ctx, *a, **kw):
        seen["args"], seen["weights_dtype"] = real_args(ctx, *a, **kw), ctx.weights_dtype
        raise Stop

    monkeypatch.setattr(loading, "_from_pretrained", load)
    monkeypatch.setattr(stage, "training_args", args)
    return seen


def _run_until_trainer(kind, tmp_path, tiny_model_dir, datasets, recipe=None):
    st, _ = _stages()[kind]
    with pytest.raises(Stop):
        run_stage(kind, st, base_model=tiny_model_dir, datasets=datasets, out_dir=tmp_path, recipe=recipe, seed=0)


@pytest.fixture
def all_data(sft_ds, pref_ds, text_ds):
    return {"d": sft_ds, "p": pref_ds, "t": text_ds}


@pytest.mark.parametrize("kind", list(_stages()))
def test_the_training_dtype_decided_once_reaches_loader_and_trainer(kind, tmp_path, tiny_model_dir, all_data,
                                                                     spies, monkeypatch):
    import medllm.train.base as base

    asked = []

    def sentinel(requested, method, stage_bf16="auto"):
        asked.append((requested, method))
        return SENTINEL_DTYPE

    monkeypatch.setattr(base, "training_dtype", sentinel)
    recipe = SimpleNamespace(model=ModelConfig(name="tiny-llama", dtype="bfloat16"))
    _run_until_trainer(kind, tmp_path, tiny_model_dir, all_data, recipe=recipe)

    assert asked and set(asked) == {("bfloat16", "lora")}  # the recipe's model.dtype is what is asked about
    train_load = spies["loads"][0]
    assert train_load["dtype"] == SENTINEL_DTYPE, spies["loads"]
    assert train_load["device"] is None  # placement is the trainer's (each rank its own device)
    assert spies["weights_dtype"] == SENTINEL_DTYPE
    args = spies["args"]
    assert (args.fp16, args.bf16) == (True, False)  # the trainer's precision follows the weights


@pytest.mark.parametrize("kind", list(_stages()))
def test_on_a_bf16_gpu_every_stage_loads_bf16_and_trains_in_bf16(kind, tmp_path, tiny_model_dir, all_data, spies,
                                                                 monkeypatch):
    """Pretend to be on a bf16 GPU (the one probe, ``medllm.models.hardware.accelerator``): a path
    that hard-codes fp32 weights, ``use_cpu`` or the CPU precision flags fails here."""
    import medllm.models.hardware as hw

    monkeypatch.setattr(hw, "accelerator", lambda: "cuda")
    monkeypatch.setattr(hw, "accelerator_supports_bf16", lambda: True)
    monkeypatch.setattr(hw, "local_device", lambda: SENTINEL_DEVICE)  # no real GPU: stay on the CPU
    import transformers.training_args as targs

    monkeypatch.setattr(targs, "is_torch_bf16_gpu_available", lambda: True)  # its own check of the pretend GPU
    st, _ = _stages()[kind]
    st = st.model_copy(update={"bf16": "auto"})
    with pytest.raises(Stop):
        run_stage(kind, st, base_model=tiny_model_dir, datasets=all_data, out_dir=tmp_path, seed=0)
    assert spies["loads"][0]["dtype"] == torch.bfloat16 and spies["loads"][0]["device"] is None
    args = spies["args"]
    assert args.bf16 is True and args.fp16 is False and args.use_cpu is False


def test_rejection_sampling_samples_and_scores_on_this_ranks_device(tmp_path, tiny_model_dir, sft_ds, spies,
                                                                   monkeypatch):
    """The policy goes to ``local_device()`` before sampling and the reward model used as scorer
    loads there too, in the recipe's dtype."""
    import medllm.models.hardware as hw
    import medllm.train.causal as causal

    monkeypatch.setattr(hw, "local_device", lambda: SENTINEL_DEVICE)
    moved = []
    real_policy = causal.load_policy

    def policy(ctx):
        model, tok, context = real_policy(ctx)
        real_to = model.to

        def to(*args, **kwargs):
            moved.append(args[0] if args else kwargs.get("device"))
            return real_to(*args, **kwargs)

        model.to = to
        return model, tok, context

    monkeypatch.setattr(causal, "load_policy", policy)
    st = RejectionSamplingStage(data=["d"], k=2, max_new_tokens=3, scorer=str(tiny_model_dir), **FAST)
    recipe = SimpleNamespace(model=ModelConfig(name="tiny-llama", dtype="bfloat16"))
    with pytest.raises(Stop):
        run_stage("rs", st, base_model=tiny_model_dir, datasets={"d": sft_ds}, out_dir=tmp_path, recipe=recipe, seed=0)
    assert moved == [SENTINEL_DEVICE]
    scorer = [x for x in spies["loads"] if x["cls"] == "AutoModelForSequenceClassification"]
    assert scorer == [{"dtype": torch.bfloat16, "device": SENTINEL_DEVICE, "cls": "AutoModelForSequenceClassification"}]


class _OnMeta:
    """A stand-in model 'on another device' (meta): it accepts only inputs moved there."""

    device = torch.device("meta")

    def __init__(self, eos_ids):
        self.generation_config = SimpleNamespace(eos_token_id=eos_ids)
        self.config = SimpleNamespace(eos_token_id=eos_ids[0])
        self.calls = []

    def eval(self):
        return self

    def _check(self, kw):
        for k, v in kw.items():
            if isinstance(v, torch.Tensor):
                assert v.device.type == "meta", f"{k} left on {v.device}, not on the model's device"

    def generate(self, **kw):
        self._check(kw)
        self.calls.append(kw)
        n, width = kw["input_ids"].shape
        new = torch.tensor([[12, kw["eos_token_id"][-1], 13]] * (n * kw["num_return_sequences"]))
        return torch.cat([torch.zeros(new.shape[0], width, dtype=torch.long), new], dim=1)

    def __call__(self, **kw):
        self._check(kw)
        return SimpleNamespace(logits=torch.zeros(kw["input_ids"].shape[0], 1))


@pytest.fixture
def meta_autocast(monkeypatch):
    """torch.autocast has no 'meta' device type; the stand-in device autocasts like the CPU."""
    real = torch.autocast
    monkeypatch.setattr(torch, "autocast", lambda device_type, **kw: real("cpu" if device_type == "meta"
                                                                          else device_type, **kw))


def test_sampling_inputs_go_to_the_model_device_and_stop_on_every_eos(tiny_tokenizer, meta_autocast):
    from medllm.models import stop_token_ids
    from medllm.train.rejection_sampling import sample

    eot = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    other = 7 if eot != 7 else 8
    model = _OnMeta([other, eot])
    cfg = RejectionSamplingStage(data=["d"], k=2, max_new_tokens=3, bf16="false")
    out = sample(model, tiny_tokenizer, [{"prompt": [{"role": "user", "content": "Hi"}], "reference": None}], cfg)
    stops = stop_token_ids(model, tiny_tokenizer)
    assert model.calls[0]["eos_token_id"] == stops and {other, eot} <= set(stops)
    assert all(a["finished"] for a in out[0])  # the generation_config's eos counted as an end


def test_reward_scores_are_computed_on_the_model_device(tiny_tokenizer):
    from medllm.train.reward import score_conversations

    convs = [[{"role": "user", "content": "Fever?"}, {"role": "assistant", "content": "Rest."}]] * 3
    assert score_conversations(_OnMeta([2]), tiny_tokenizer, convs, batch_size=2) == [0.0, 0.0, 0.0]
