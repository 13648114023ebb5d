#!/usr/bin/env bash
# Regenerates the flag and key lists in this directory from git clones of the four projects.
# Names only are recorded (the public interface of each launcher); no code is copied.
# Usage: extract.sh MEGATRON_CLONE TORCHTITAN_CLONE DEEPSPEED_CLONE NEMO_CLONE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
megatron=$1 torchtitan=$2 deepspeed=$3 nemo=$4
MEG=core_v0.14.0 TT=v0.2.2 DS=v0.16.4 NEMO=v2.4.0

header() { # project tag clone licence path...
  echo "# $1 $2 (commit $(git -C "$3" rev-list -1 "$2")), names only, extracted by extract.sh"
  echo "# project licence: $4; from:"
  shift 4
  for p in "$@"; do echo "#   $p"; done
}

# Megatron-LM: every --flag given to add_argument in the training argument parser.
{
  header Megatron-LM $MEG "$megatron" "BSD-3-Clause" \
    "https://github.com/NVIDIA/Megatron-LM/blob/$MEG/megatron/training/arguments.py"
  git -C "$megatron" show $MEG:megatron/training/arguments.py |
    perl -0ne 'while(/add_argument\(\s*((?:["\x27]--?[A-Za-z0-9_-]+["\x27]\s*,\s*)+)/g){my $a=$1; while($a=~/["\x27](--[A-Za-z0-9_-]+)["\x27]/g){print "$1\n"}}' |
    sort -u
} >"$here/megatron-lm-$MEG-flags.txt"

# torchtitan: section.key for every dataclass field reachable from JobConfig.
{
  header torchtitan $TT "$torchtitan" "BSD-3-Clause" \
    "https://github.com/pytorch/torchtitan/blob/$TT/torchtitan/config/job_config.py"
  git -C "$torchtitan" show $TT:torchtitan/config/job_config.py | perl -ne '
    if (/^class (\w+)/) { $c = $1 }
    if (/^    ([a-z_0-9]+): *(\w+)/) { push @{$f{$c}}, $1; $t{$c}{$1} = $2 }
    END { for $s (@{$f{JobConfig}}) { $cls = $t{JobConfig}{$s}; print "$s.$_\n" for @{$f{$cls}} } }' |
    sort -u
} >"$here/torchtitan-$TT-keys.txt"

# DeepSpeed: top-level keys from runtime/constants.py, and the sections this exporter writes.
{
  header DeepSpeed $DS "$deepspeed" "Apache-2.0" \
    "https://github.com/deepspeedai/DeepSpeed/blob/$DS/deepspeed/runtime/constants.py" \
    "https://github.com/deepspeedai/DeepSpeed/blob/$DS/deepspeed/runtime/zero/config.py" \
    "https://github.com/deepspeedai/DeepSpeed/blob/$DS/deepspeed/runtime/activation_checkpointing/config.py" \
    "https://github.com/deepspeedai/DeepSpeed/blob/$DS/deepspeed/runtime/tensor_parallel/config.py"
  {
    git -C "$deepspeed" show $DS:deepspeed/runtime/constants.py |
      perl -ne 'print "$2\n" if /^([A-Z0-9_]+) = "([a-z_0-9]+)"/ && $1 !~ /^(BFLOAT16|FP16)_/ && $1 !~ /_DEFAULT$/'
    git -C "$deepspeed" show $DS:deepspeed/runtime/constants.py |
      perl -ne 'print "bf16.$1\n" if /^BFLOAT16_[A-Z_]+ = "([a-z_]+)"/; print "fp16.$1\n" if /^FP16_[A-Z_]+ = "([a-z_]+)"/'
    git -C "$deepspeed" show $DS:deepspeed/runtime/zero/config.py |
      perl -ne 'print "$1\n" if /^ZERO_OPTIMIZATION = "([a-z_]+)"/'
    git -C "$deepspeed" show $DS:deepspeed/runtime/activation_checkpointing/config.py |
      perl -ne 'print "$1\n" if /^ACT_CHKPT = \x27([a-z_]+)\x27/'
    git -C "$deepspeed" show $DS:deepspeed/runtime/tensor_parallel/config.py |
      perl -ne 'print "$1\n" if /if \x27([a-z_]+)\x27 in ds_config/'
    git -C "$deepspeed" show $DS:deepspeed/runtime/zero/config.py |
      awk '/^class DeepSpeedZeroConfig/{on=1;next} /^class /{on=0} on' |
      perl -ne 'print "zero_optimization.$1\n" if /^    ([a-z_0-9]+): /'
    git -C "$deepspeed" show $DS:deepspeed/runtime/activation_checkpointing/config.py |
      perl -ne 'print "activation_checkpointing.$1\n" if /^ACT_CHKPT_[A-Z_]+ = \x27([a-z_]+)\x27/'
    git -C "$deepspeed" show $DS:deepspeed/runtime/tensor_parallel/config.py |
      awk '/^class TPTrainingConfig/{on=1;next} /^class |^def /{on=0} on' |
      perl -ne 'print "tensor_parallel.$1\n" if /^    ([a-z_0-9]+): /'
  } | sort -u
} >"$here/deepspeed-$DS-keys.txt"

# NeMo 2: the dotted paths a recipe override can set; the fields of MegatronStrategy,
# MegatronMixedPrecision and PreTrainingDataModule (NeMo), the Trainer keywords the recipes
# use, and Megatron-Core's TransformerConfig/ModelParallelConfig and OptimizerConfig fields.
{
  header NeMo $NEMO "$nemo" "Apache-2.0 (Megatron-Core: BSD-3-Clause)" \
    "https://github.com/NVIDIA/NeMo/blob/$NEMO/nemo/lightning/pytorch/strategies/megatron_strategy.py" \
    "https://github.com/NVIDIA/NeMo/blob/$NEMO/nemo/lightning/pytorch/plugins/mixed_precision.py" \
    "https://github.com/NVIDIA/NeMo/blob/$NEMO/nemo/collections/llm/gpt/data/pre_training.py" \
    "https://github.com/NVIDIA/NeMo/blob/$NEMO/nemo/collections/llm/recipes/llama3_70b.py" \
    "https://github.com/NVIDIA/Megatron-LM/blob/$MEG/megatron/core/transformer/transformer_config.py" \
    "https://github.com/NVIDIA/Megatron-LM/blob/$MEG/megatron/core/model_parallel_config.py" \
    "https://github.com/NVIDIA/Megatron-LM/blob/$MEG/megatron/core/optimizer/optimizer_config.py"
  {
    init_params() { awk "/class $1/,/\\) -> None:/" | perl -ne "print \"$2.\$1\\n\" if /^        ([a-z_0-9]+):/"; }
    git -C "$nemo" show $NEMO:nemo/lightning/pytorch/strategies/megatron_strategy.py | init_params MegatronStrategy trainer.strategy
    git -C "$nemo" show $NEMO:nemo/lightning/pytorch/plugins/mixed_precision.py | init_params MegatronMixedPrecision trainer.plugins
    git -C "$nemo" show $NEMO:nemo/collections/llm/gpt/data/pre_training.py | init_params PreTrainingDataModule data
    git -C "$nemo" show $NEMO:nemo/collections/llm/recipes/llama3_70b.py |
      awk '/nl.Trainer,/{on=1;next} on&&/^    \)/{on=0} on' | perl -ne 'print "trainer.$1\n" if /^        ([a-z_]+)=/'
    for f in megatron/core/transformer/transformer_config.py megatron/core/model_parallel_config.py; do
      git -C "$megatron" show $MEG:$f | perl -ne 'print "model.config.$1\n" if /^    ([a-z_0-9]+): /'
    done
    git -C "$megatron" show $MEG:megatron/core/optimizer/optimizer_config.py |
      perl -ne 'print "optim.config.$1\n" if /^    ([a-z_0-9]+): /'
  } | sort -u
} >"$here/nemo-$NEMO-keys.txt"
