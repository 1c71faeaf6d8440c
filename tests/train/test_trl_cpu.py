"""TRL's fused log-prob head scores only labelled positions on CPU: same log-probabilities."""
from __future__ import annotations

import torch


def test_compact_scoring_on_cpu_gives_the_same_log_probs_and_loss(tiny_model_dir, monkeypatch):
    import trl.trainer.utils as trl_utils
    from trl.trainer.utils import add_fused_lm_head

    from medllm.models.loading import load_causal_lm
    from medllm.train.trl_cpu import score_labelled_positions_only_on_cpu

    model, _ = load_causal_lm(str(tiny_model_dir), dtype="float32")
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    torch.manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (3, 12))
    labels = ids.clone()
    labels[:, :5] = -100            # prompt
    labels[1, 9:] = -100            # padding
    seen = []
    original = trl_utils._use_triton
    monkeypatch.setattr(trl_utils, "_use_triton", lambda d: seen.append("x") or original(d))

    def run():
        with torch.no_grad():
            return model(input_ids=ids, labels=labels, fused_lm_head=True)

    full = run()
    assert seen, "TRL no longer reads trl.trainer.utils._use_triton: the patch would do nothing"
    assert score_labelled_positions_only_on_cpu()
    assert trl_utils._use_triton(torch.device("cpu"))
    compact = run()
    mask = full.label_mask
    torch.testing.assert_close(compact.log_probs[mask], full.log_probs[mask])
    torch.testing.assert_close(compact.entropy[mask], full.entropy[mask])
    torch.testing.assert_close(compact.loss, full.loss)
    assert score_labelled_positions_only_on_cpu()   # idempotent
