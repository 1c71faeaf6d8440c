"""The causal-LM trainer behind pretrain / sft / rejection sampling: HF ``Trainer`` with
CPU-motivated changes, all measured (bench/train_throughput.py, docs/training.md):

* the LM head runs only on positions that have a target. With a 49K vocabulary the head
  and its cross-entropy are a large share of a small model's step; in SFT most positions
  (system + user turns, padding) have no target. A forward pre-hook on the output layer
  gathers those positions, so the model is still called through its own ``forward`` and
  DDP / PEFT / gradient checkpointing keep working and checkpoints keep their keys;
* the head and its cross-entropy run in chunks of target positions (only where this process
  holds the whole head weight: not under FSDP / ZeRO-3 sharding, see ``head_chunking_valid``),
  fused: each chunk's gradients (softmax - one-hot, two matmuls) are computed in the forward
  pass, so the full [targets x vocab] logits, their fp32 copy and their gradient never exist at
  once, and no chunk is recomputed (until 2026-12-07 each chunk was checkpointed and ran twice).
  On 8 x 256 packed tokens chunking is ~0.7 GB less peak memory; fusing it, together with the
  next point, was 1.08x on demo SFT;
* a tied input embedding returns sparse gradients (``tied_embedding_for_sparse_grad``):
  autograd sums its few rows with the head's dense gradient instead of first zero-filling a
  dense [vocab x hidden] gradient for the embedding (its own share of the 1.08x not measured);
* batches carry no wasted work: length-grouped padded batches, or padding-free packing
  (one row, ``position_ids`` restarting per sample, so transformers builds a
  block-diagonal mask and samples never attend to each other).

* a batch that the memory budget cannot hold in one forward is split, when it arrives, into
  forwards the plan's estimate admits (``forward_fits``, single process only: under DDP every
  backward would all-reduce), rows sorted by length so each piece is padded only to its own
  longest row; the gradients accumulate before the one optimizer step, the loss is unchanged.
  In the same path a batch is also cut where its padding costs more than the extra forwards
  (``split_padding``, ``split_to_fit``'s cost): a 1024-token row no longer pads seven short ones.

* a prompt prefix that rows of a padded batch share (the chat template's system turn, a fixed
  instruction) is computed once per distinct prefix, not once per row: a first forward runs
  the distinct prefixes and returns their key/value cache, the cache is indexed out to every
  row (autograd sums the rows' gradients back), and the main forward runs the rest of each row
  against it (``plan_shared_prefix``). Same loss and gradients (tested). The extra forward
  costs ~90 tokens' worth, so it runs only when it saves ``prefix_min_saved`` tokens: a
  95-token system prompt trained 1.5x faster, the demo's 15-token one not at all over 8 rows
  and 1.08x over 16 (docs/training.md). One process without gradient checkpointing and decoders with a plain
  key/value cache only (DDP expects one forward per backward; checkpointing turns the cache off).

* on CPU, padded pieces up to ``eager_attention_max_width`` tokens wide run eager (matmul +
  softmax) attention instead of SDPA: CPU SDPA's flash backward is slow on short rows (one
  step of 8 x 160 tokens on SmolLM2-135M: 34 s with SDPA, 22 s eager, 2-core CPU under load,
  docs/training.md). Eager keeps the [heads x width x width] scores for backward, which
  ``memory_fit.forward_fits`` counts for such pieces.

The loss is summed over target tokens and divided by the number of target tokens in the
whole optimizer step (``num_items_in_batch``, counted by Trainer across accumulation and
processes), so batch 8 x accum 1 == batch 1 x accum 8 == 2 processes x accum 4.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import Trainer

from medllm.train.tokenize import IGNORE


def round_up(n: int, multiple: int | None) -> int:
    return -(-n // multiple) * multiple if multiple else n


@dataclass
class CausalCollator:
    pad_id: int
    packed: bool = False
    pad_to_multiple_of: int | None = None   # padded batches only (see config: fewer distinct sizes)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        if self.packed:
            return self._packed(rows)
        width = round_up(max(len(r["input_ids"]) for r in rows), self.pad_to_multiple_of)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        shift = torch.full_like(labels, IGNORE)
        shift[:, :-1] = labels[:, 1:]
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "shift_labels": shift}

    @staticmethod
    def _packed(rows: list[dict]) -> dict[str, torch.Tensor]:
        ids, labels, shift, pos = [], [], [], []
        for r in rows:
            n = len(r["input_ids"])
            ids += r["input_ids"]
            labels += r["labels"]
            shift += list(r["labels"][1:]) + [IGNORE]  # never predict across a sample boundary
            pos += list(range(n))
        as_row = lambda xs: torch.tensor(xs, dtype=torch.long).unsqueeze(0)  # noqa: E731
        return {"input_ids": as_row(ids), "position_ids": as_row(pos), "labels": as_row(labels),
                "shift_labels": as_row(shift)}


EAGER_ATTENTION_MAX_WIDTH = 512


def use_eager_attention(piece: dict, max_width: int, cfg) -> bool:
    """A padded (not packed) piece no wider than ``max_width`` of a model on SDPA attention."""
    return bool(max_width) and cfg is not None and getattr(cfg, "_attn_implementation", None) == "sdpa" \
        and "attention_mask" in piece and piece["input_ids"].shape[-1] <= max_width


@dataclass
class PrefixPlan:
    length: int            # P: tokens computed once per distinct prefix
    first: torch.Tensor    # a row holding each distinct prefix
    inverse: torch.Tensor  # row -> its distinct prefix
    saved: int             # decoder tokens not computed: (rows - distinct prefixes) x P


def plan_shared_prefix(batch: dict, min_saved: int) -> PrefixPlan | None:
    """The prefix length that saves the most decoder tokens in a padded batch, or None when
    under ``min_saved``. A prefix holds no position with a target (its hidden states are never
    computed per row) and leaves every row at least one token for the main forward."""
    ids, mask, shift = batch["input_ids"], batch["attention_mask"], batch["shift_labels"]
    rows = ids.shape[0]
    if rows < 2:
        return None
    lengths = mask.sum(1)
    has_target = shift != IGNORE
    first_target = torch.where(has_target.any(1), has_target.float().argmax(1), lengths - 1)
    limit = int(torch.minimum(first_target, lengths - 1).min())
    if bool((mask[:, :limit] == 0).any()):   # left padding: no common start
        return None
    best = None
    for p in range(1, limit + 1):
        uniq, inverse = torch.unique(ids[:, :p], dim=0, return_inverse=True)
        saved = (rows - uniq.shape[0]) * p
        if best is None or saved > best.saved:
            first = torch.full((uniq.shape[0],), rows, dtype=torch.long).scatter_reduce(
                0, inverse, torch.arange(rows), reduce="amin")
            best = PrefixPlan(p, first, inverse, saved)
        if uniq.shape[0] == rows:   # every row distinct from here on
            break
    return best if best is not None and best.saved >= min_saved else None


def prefix_sharing_valid(model, *, processes: int, gradient_checkpointing: bool, deepspeed: bool,
                         fsdp: bool) -> bool:
    """One process, no gradient checkpointing, and a decoder whose every layer keeps a plain
    (full-attention) key/value cache; otherwise every row runs its whole prompt."""
    cfg = getattr(model, "config", None)
    if processes != 1 or gradient_checkpointing or deepspeed or fsdp or cfg is None:
        return False
    if getattr(cfg, "is_encoder_decoder", False) or getattr(model, "_is_stateful", False):
        return False
    types = getattr(cfg, "layer_types", None)
    if types is not None and any(t != "full_attention" for t in types):
        return False
    return not (getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True))


def _checkpointing(model) -> bool:
    flag = "is_activation_checkpointing" if hasattr(type(model), "is_activation_checkpointing") \
        else "is_gradient_checkpointing"   # renamed in transformers 5.2x
    return bool(getattr(model, flag, False))


class _attn_implementation:
    def __init__(self, cfg, name: str):
        self.cfg, self.name = cfg, name

    def __enter__(self):
        self.before = self.cfg._attn_implementation
        self.cfg._attn_implementation = self.name

    def __exit__(self, *exc):
        self.cfg._attn_implementation = self.before


def _attention_scale(model) -> float:
    """The width at which a token's attention costs as much as its weight matmuls: per token,
    the matmuls do ~2 x params FLOPs, attention ~4 x width x hidden per layer (scores and
    values), so width = params / (2 x hidden x layers). ~3070 for SmolLM2-135M; inf if unknown."""
    cfg = getattr(model, "config", None)
    hidden, layers = getattr(cfg, "hidden_size", None), getattr(cfg, "num_hidden_layers", None)
    if not hidden or not layers:
        return float("inf")
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    skip = {id(p) for p in emb.parameters()} if emb is not None else set()
    params = sum(p.numel() for p in model.parameters() if id(p) not in skip)
    return max(params / (2 * hidden * layers), 1.0)


def _rows(batch) -> int:
    pos = batch.get("position_ids")
    if "attention_mask" not in batch and pos is not None:
        return int((pos == 0).sum())
    return int(batch["input_ids"].shape[0])


def split_to_fit(batch: dict, fits, multiple: int | None = None, cost=None, min_gain: float = 0.1) -> list[dict]:
    """``batch`` as pieces that each satisfy ``fits(rows, width)`` (one piece when it already
    does). Padded batches: rows longest first, each piece cut to its own longest row. Packed
    rows (``position_ids`` restarting at 0): runs of whole samples. A single row/sample that
    does not fit is still one piece (the static plan made sure it fits).

    With ``cost(rows, width)`` (the work of one forward/backward of a padded piece, overhead
    included), a padded batch is cut where that is cheaper by ``min_gain`` than one piece (or
    than the pieces the budget alone forces): a batch of one 1024-token row and seven of ~200
    would otherwise pad all eight to 1024. The cheapest cut into runs of the sorted rows is
    exact (``_cheapest_runs``)."""
    if "attention_mask" not in batch and "position_ids" in batch:
        return _split_packed(batch, fits)
    mask = batch["attention_mask"]
    rows, width = mask.shape
    if cost is None and fits(rows, width):
        return [batch]
    lengths = mask.sum(1)
    order = torch.argsort(lengths, descending=True, stable=True).tolist()
    widths = [min(round_up(max(int(lengths[i]), 1), multiple), width) for i in order]
    groups = _greedy_runs(widths, fits) if not fits(rows, width) else [range(rows)]
    if cost is not None and rows <= 256:
        baseline = sum(cost(len(g), widths[g[0]]) for g in groups)
        cheapest, total = _cheapest_runs(widths, fits, cost)
        if total <= (1 - min_gain) * baseline:
            groups = cheapest
    if len(groups) == 1:
        return [batch]
    out = []
    for g in groups:   # each piece cut to its own longest row (rounded up like the collator's width)
        idx = torch.tensor([order[k] for k in g])
        w = widths[g[0]]
        out.append({k: (v.index_select(0, idx)[:, :w] if torch.is_tensor(v) and v.dim() == 2 else v)
                    for k, v in batch.items()})
    return out


def _greedy_runs(widths: list[int], fits) -> list[range]:
    """Runs of the sorted rows, each as long as ``fits`` admits at its first row's width."""
    runs, a = [], 0
    for b in range(1, len(widths) + 1):
        if b == len(widths) or not fits(b + 1 - a, widths[a]):
            runs.append(range(a, b))
            a = b
    return runs


def _cheapest_runs(widths: list[int], fits, cost) -> tuple[list[range], float]:
    """The cut of rows sorted longest first into runs (each padded to its first row) that
    minimises the summed ``cost`` with every run fitting (a single row always allowed).
    Dynamic programming over cut points: O(rows^2) cost evaluations."""
    n = len(widths)
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            if j - i > 1 and not fits(j - i, widths[i]):
                break   # a longer run from an earlier (wider) row does not fit either
            c = best[i] + cost(j - i, widths[i])
            if c < best[j]:
                best[j], cut[j] = c, i
    runs, j = [], n
    while j > 0:
        runs.append(range(cut[j], j))
        j = cut[j]
    return runs[::-1], best[n]


def _split_packed(batch: dict, fits) -> list[dict]:
    pos = batch["position_ids"][0]
    total = pos.numel()
    if fits(1, total):
        return [batch]
    starts = (pos == 0).nonzero().squeeze(-1).tolist() + [total]
    cuts, a = [], 0
    for k in range(len(starts) - 1):   # sample k spans starts[k]:starts[k+1]
        if starts[k] > a and not fits(1, starts[k + 1] - a):
            cuts.append(starts[k])
            a = starts[k]
    pieces, a = [], 0
    for cut in cuts + [total]:
        pieces.append({k: (v[:, a:cut] if torch.is_tensor(v) and v.dim() == 2 else v) for k, v in batch.items()})
        a = cut
    return pieces


class _HeadSelection:
    """Forward pre-hook on the output layer. Picks the rows of the positions that have a
    target; in ``defer`` mode it keeps them and hands the layer an empty input, so the model's
    forward skips the head and the trainer applies it chunk by chunk."""

    def __init__(self):
        self.index: torch.Tensor | None = None
        self.defer = False
        self.hidden: torch.Tensor | None = None

    def __call__(self, module, args):
        if self.index is None:
            return None
        hidden = args[0]
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, self.index)
        if self.defer:
            self.hidden = picked
            picked = picked[:0]
        return (picked.unsqueeze(0),) + tuple(args[1:])


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype the head's matmuls run in: autocast's where it is on (fp32 weights under bf16
    autocast), else the weight's own."""
    kind = t.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return t.dtype


class _LinearCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of ``hidden @ weight.T (+ bias)``, chunk by chunk, with the
    gradients computed in the forward pass (softmax - one-hot, then two matmuls), so no chunk's
    logits are kept or recomputed and no autograd graph spans the [targets x vocab] tensors."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk):
        dt = _compute_dtype(weight)
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.to(dt), weight.to(dt)
            b = bias.to(dt) if bias is not None else None
            loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
            grad_h = torch.empty_like(h) if need_h else None
            grad_w = grad_b = None
            many = hidden.shape[0] > chunk
            for i in range(0, hidden.shape[0], chunk):
                hc, tc = h[i:i + chunk], targets[i:i + chunk]
                # one [chunk x vocab] fp32 buffer, worked in place (logsumexp would allocate a second one)
                logits = F.linear(hc, w, b).float()
                target = logits.gather(1, tc.unsqueeze(1)).squeeze(1)
                top = logits.amax(dim=-1, keepdim=True)
                probs = logits.sub_(top).exp_()
                total = probs.sum(dim=-1, keepdim=True)
                loss += (top.squeeze(1) + total.log().squeeze(1) - target).sum()
                probs.div_(total)
                probs[torch.arange(tc.shape[0], device=tc.device), tc] -= 1.0
                g = probs.to(dt)
                del logits, probs
                if need_h:
                    torch.mm(g, w, out=grad_h[i:i + chunk])
                if need_w:
                    part = g.t().mm(hc)
                    if not many:
                        grad_w = part
                    elif grad_w is None:
                        grad_w = part.float()          # several chunks sum in fp32
                    else:
                        grad_w.add_(part)
                if need_b:
                    gb = g.float().sum(0)
                    grad_b = gb if grad_b is None else grad_b.add_(gb)
            if need_w and grad_w is None:              # no target at all: a zero gradient, still dense
                grad_w = torch.zeros_like(weight)
        ctx.grads = (grad_h, grad_w, grad_b)
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grads, ctx.grads = ctx.grads, None   # drop our reference: autograd may then sum into the tensor in place
        out = []
        for g, dtype in zip(grads, ctx.dtypes):
            if g is not None:
                g = g.to(dtype) if g.dtype != dtype else g
                g.mul_(grad_loss.to(g.dtype))
            out.append(g)
        return (*out, None, None)


def chunked_head_ce(hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor, chunk: int) -> torch.Tensor:
    """Sum of cross-entropy of ``head(hidden)`` against ``targets``, ``chunk`` rows at a time,
    the gradients of each chunk computed right away (fused linear + cross-entropy): the
    [targets x vocab] logits exist for one chunk at a time and never twice."""
    return _LinearCrossEntropy.apply(hidden, head.weight, head.bias, targets, chunk)


def tied_embedding_for_sparse_grad(model, head) -> torch.nn.Embedding | None:
    """The input embedding whose weight *is* the (trainable) head's, or None.

    Why: a dense embedding backward zero-fills a [vocab x hidden] gradient and scatters a few
    hundred rows into it before autograd sums it with the head's gradient. A profile of demo SFT
    (old head path) showed that fill at 55 ms and the sum at 61 ms per micro-batch, mostly page
    faults on fresh tensors (the same fill took 15 ms on reused memory). With ``sparse=True`` the
    embedding returns only its rows and autograd adds them to the head's dense gradient. A warm
    micro-probe put both paths at about the same cost (16 vs 18.5 ms: autograd adds the sparse
    rows out of place); the demo gain (1.08x) was measured with this and the fused head together.
    Only for a tied weight: an untied embedding's sparse gradient would reach the optimizer itself."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if type(emb) is not torch.nn.Embedding or head is None or emb.weight is not getattr(head, "weight", None):
        return None
    if not emb.weight.requires_grad or emb.max_norm is not None or weight_is_sharded(emb.weight):
        return None
    return emb


def weight_is_sharded(weight) -> bool:
    """True when ``weight`` is a shard, not the whole matrix: an FSDP2 DTensor, a DeepSpeed
    ZeRO-3 partitioned parameter (``ds_id``), or an FSDP1 flat-parameter view."""
    try:
        from torch.distributed.tensor import DTensor

        if isinstance(weight, DTensor):
            return True
    except ImportError:  # torch without distributed
        pass
    return hasattr(weight, "ds_id") or hasattr(weight, "ds_status") or hasattr(weight, "_is_flat_param") \
        or weight.numel() == 0


def head_chunking_valid(head, *, fsdp: bool = False, zero3: bool = False) -> bool:
    """The chunked head/CE applies the head's weight outside the module's forward, which is
    right only when this process holds the whole, plain weight: never under FSDP or ZeRO-3
    (whose hooks gather the weight only inside forward), never for a wrapped (LoRA) head."""
    return type(head) is torch.nn.Linear and not fsdp and not zero3 and not weight_is_sharded(head.weight)


def _zero3(accelerator) -> bool:
    plugin = getattr(getattr(accelerator, "state", None), "deepspeed_plugin", None)
    return bool(plugin is not None and getattr(plugin, "zero_stage", 0) == 3)


class FastCausalLMTrainer(Trainer):
    """``Trainer`` computing the causal-LM loss on target positions only (see module doc)."""

    head_chunk = 1024  # target positions per head/CE chunk
    forward_fits = None  # (rows, width) -> bool from train.memory_fit: split batches that do not fit
    eager_attention_max_width = EAGER_ATTENTION_MAX_WIDTH  # CPU, padded pieces: eager instead of SDPA; 0 = off
    share_prefix = True      # shared prompt prefixes run once per distinct prefix (module doc)
    # decoder tokens a shared prefix must save to pay for its extra forward: the prefix forward's op
    # overhead and its own weight-gradient pass cost ~90 tokens' worth on SmolLM2-135M, 2-core CPU
    # (the demo's 15-token system turn, ~90 tokens saved per 8 rows, ran at the same speed)
    prefix_min_saved = 128
    # split padded batches where padding costs more than extra forwards (split_to_fit's cost), in the
    # one-process CPU path that already splits to fit the budget. A forward/backward costs ~90 tokens'
    # worth besides its tokens on SmolLM2-135M, 2-core CPU (the shared-prefix probe above)
    split_padding = True
    forward_overhead_tokens = 90

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._select = _HeadSelection()
        head = self.accelerator.unwrap_model(self.model).get_output_embeddings()
        self._head = head
        # Chunking applies the head's weight directly, so only a plain Linear qualifies (not
        # a LoRA-wrapped head, not a model that post-processes its logits).
        cfg = getattr(self.accelerator.unwrap_model(self.model), "config", None)
        self._chunk_ok = (head_chunking_valid(head, fsdp=bool(getattr(self, "is_fsdp_enabled", False)),
                                              zero3=_zero3(self.accelerator))
                          and not getattr(cfg, "final_logit_softcapping", None)
                          and getattr(cfg, "logit_scale", None) in (None, 1, 1.0))
        self._select.defer = self._chunk_ok
        self._hook = head.register_forward_pre_hook(self._select)
        self._sparse_embedding = tied_embedding_for_sparse_grad(self.accelerator.unwrap_model(self.model), head)
        self.model_accepts_loss_kwargs = True  # our loss is normalised by num_items_in_batch
        self.tokens_seen = 0
        self.target_tokens_seen = 0
        self.forwards = 0            # forward/backward passes run (more than batches when split)
        self.forward_rows_max = 0    # most rows (padded) or samples (packed) in one forward
        self.prefix_tokens_saved = 0  # decoder tokens not computed thanks to shared prefixes
        self._prefix_ok = None        # decided at the first batch, once the model is wrapped
        self._attention_scale = _attention_scale(self.accelerator.unwrap_model(self.model))

    def train(self, *args, **kwargs):
        # one process only: DDP decides at wrap time which gradients it expects to be sparse
        emb = self._sparse_embedding if self.accelerator.num_processes == 1 else None
        if emb is not None:
            emb.sparse = True
        try:
            return super().train(*args, **kwargs)
        finally:
            if emb is not None:
                emb.sparse = False

    def training_step(self, model, inputs, num_items_in_batch=None):
        multiple = getattr(self.data_collator, "pad_to_multiple_of", None)   # split pieces keep rounded widths
        cost = self._piece_cost if self.split_padding else None
        pieces = (split_to_fit(inputs, self.forward_fits, multiple, cost=cost)
                  if self.forward_fits is not None else [inputs])
        if num_items_in_batch is None and len(pieces) > 1:   # normalise every piece by the whole batch
            num_items_in_batch = int((inputs["shift_labels"] != IGNORE).sum())
        total = None
        for piece in pieces:
            self.forwards += 1
            self.forward_rows_max = max(self.forward_rows_max, _rows(piece))
            with self._attention_for(piece):
                loss = super().training_step(model, piece, num_items_in_batch)
            total = loss if total is None else total + loss
        return total

    def _piece_cost(self, rows: int, width: int) -> float:
        """Work of one forward/backward of ``rows`` x ``width`` padded tokens, in tokens: the
        per-token matmuls, attention growing with the width, and a fixed per-forward overhead."""
        return rows * width * (1 + width / self._attention_scale) + self.forward_overhead_tokens

    def _attention_for(self, piece):
        """Eager attention for a narrow padded piece on CPU (see module doc), else unchanged."""
        import contextlib

        cfg = getattr(self.accelerator.unwrap_model(self.model), "config", None)
        if (not use_eager_attention(piece, self.eager_attention_max_width, cfg)
                or self.args.device.type != "cpu"):
            return contextlib.nullcontext()
        return _attn_implementation(cfg, "eager")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        shift = inputs["shift_labels"].reshape(-1)
        fwd = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}
        keep = (shift != IGNORE).nonzero().squeeze(-1)
        # re-checked per step: the weight becomes a shard only once the trainer wraps the model
        self._select.defer = self._chunk_ok and not weight_is_sharded(self._head.weight)
        plan = self._prefix_plan(inputs)
        try:
            if plan is None:
                self._select.index = keep
                out = model(**fwd, use_cache=False)
            else:
                out, keep = self._forward_with_shared_prefix(model, fwd, inputs["shift_labels"], plan)
                shift = inputs["shift_labels"][:, plan.length:].reshape(-1)
            hidden, self._select.hidden = self._select.hidden, None
        finally:
            self._select.index = None
        targets = shift.index_select(0, keep)
        if self._select.defer:
            loss = chunked_head_ce(hidden, self._head, targets, self.head_chunk)
        else:
            logits = out.logits.reshape(-1, out.logits.shape[-1]).float()
            loss = F.cross_entropy(logits, targets, reduction="sum")
        denom = num_items_in_batch if num_items_in_batch is not None else max(keep.numel(), 1)
        loss = loss / denom
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; undo for a global token mean
        if model.training:
            mask = inputs.get("attention_mask")
            self.tokens_seen += int(mask.sum()) if mask is not None else inputs["input_ids"].numel()
            self.target_tokens_seen += int(keep.numel())
        return (loss, out) if return_outputs else loss

    def _prefix_plan(self, inputs) -> PrefixPlan | None:
        if not self.share_prefix or "attention_mask" not in inputs or "position_ids" in inputs:
            return None
        if self._prefix_ok is None:
            unwrapped = self.accelerator.unwrap_model(self.model)
            self._prefix_ok = prefix_sharing_valid(
                unwrapped, processes=self.accelerator.num_processes,
                gradient_checkpointing=bool(self.args.gradient_checkpointing or _checkpointing(unwrapped)),
                deepspeed=bool(getattr(self, "is_deepspeed_enabled", False)),
                fsdp=bool(getattr(self, "is_fsdp_enabled", False)))
        return plan_shared_prefix(inputs, self.prefix_min_saved) if self._prefix_ok else None

    def _forward_with_shared_prefix(self, model, fwd, shift_labels, plan: PrefixPlan):
        """Distinct prefixes once (their cache indexed out to every row), then each row's rest.
        Returns the main forward's output and its target positions."""
        from medllm.models.kv_cache import cache_kwarg, output_cache

        ids, p = fwd["input_ids"], plan.length
        self._select.index = ids.new_zeros(0)   # the prefix has no targets: the head sees nothing
        cache = output_cache(model(input_ids=ids.index_select(0, plan.first)[:, :p], use_cache=True))
        self._select.hidden = None
        cache.reorder_cache(plan.inverse)        # row i gets the cache of its prefix
        keep = (shift_labels[:, p:].reshape(-1) != IGNORE).nonzero().squeeze(-1)
        self._select.index = keep
        out = model(input_ids=ids[:, p:], attention_mask=fwd["attention_mask"], use_cache=True,
                    **{cache_kwarg(model): cache})
        if model.training:
            self.prefix_tokens_saved += plan.saved
        return out, keep
