"""The chunked head/CE path reads the head's weight outside its forward: it must switch off
wherever that weight is a shard (FSDP / ZeRO-3) or wrapped, and the standard loss is used."""
from __future__ import annotations

import torch

from medllm.train.fast_lm import head_chunking_valid, weight_is_sharded


def test_plain_head_is_chunked_but_sharded_or_wrapped_heads_are_not():
    head = torch.nn.Linear(8, 32, bias=False)
    assert head_chunking_valid(head)
    assert not head_chunking_valid(head, fsdp=True)
    assert not head_chunking_valid(head, zero3=True)
    zero3 = torch.nn.Linear(8, 32, bias=False)
    zero3.weight = torch.nn.Parameter(torch.empty(0))   # ZeRO-3 leaves an empty placeholder
    zero3.weight.ds_id = 7
    assert weight_is_sharded(zero3.weight) and not head_chunking_valid(zero3)

    class LoraHead(torch.nn.Linear):
        pass

    assert not head_chunking_valid(LoraHead(8, 32))


def test_fsdp2_dtensor_weight_counts_as_sharded(tmp_path):
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        head = torch.nn.Linear(8, 32, bias=False)
        head.weight = torch.nn.Parameter(distribute_tensor(head.weight.detach(), mesh, [Shard(0)]))
        assert weight_is_sharded(head.weight) and not head_chunking_valid(head)
    finally:
        dist.destroy_process_group()


def test_trainer_falls_back_to_the_standard_loss_when_the_head_becomes_a_shard(tiny_model_dir, tmp_path):
    from transformers import TrainingArguments

    from medllm.models import load_causal_lm
    from medllm.train.fast_lm import CausalCollator, FastCausalLMTrainer

    model, tok = load_causal_lm(tiny_model_dir, dtype="float32", for_training=True)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, report_to="none",
                             use_cpu=True, max_steps=1)
    trainer = FastCausalLMTrainer(model=model, args=args, data_collator=CausalCollator(pad_id=0))
    rows = [{"input_ids": [5, 6, 7, 8], "labels": [5, 6, 7, 8]}, {"input_ids": [9, 10, 11], "labels": [-100, 10, 11]}]
    batch = CausalCollator(pad_id=0)(rows)
    chunked = trainer.compute_loss(model, batch)
    assert trainer._select.defer
    trainer._head.weight.ds_id = 1          # what DeepSpeed ZeRO-3 attaches when it partitions
    standard = trainer.compute_loss(model, batch)
    assert not trainer._select.defer
    assert float(standard.detach()) == __import__("pytest").approx(float(chunked.detach()), rel=1e-5)
