#!/bin/sh
# The measured chain (docs/training.md "Inherited weights against scratch"): supernet -> export of
# two members -> fine-tune from the export, against the same member from scratch; same recipe,
# steps and seeds. Steps are cut to what the shared 2-core machine allowed (see run.json).
#   results/inheritance/chain.sh supernet          # the fair supernet, 40 steps
#   results/inheritance/chain.sh scratch <seed>    # XS and S from random weights
#   results/inheritance/chain.sh export            # the XS and S members' weights, BN recalibrated
#   results/inheritance/chain.sh inherit <seed> <xs|s>   # the member from its export
set -e
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PY=.venv/bin/python
OUT=outputs/chain
STEPS=40
RECIPE="+experiment=demo trainer.max_steps=$STEPS trainer.epochs=1 trainer.warmup_steps=10 trainer.amp=false trainer.eval_every_epochs=100 trainer.checkpoint_every=100 trainer.progress=false eval_flip=false"
SUPERNET=${SUPERNET:-$OUT/supernet/checkpoints/last.pt}  # the export's source (run.json: which step)
TIME="/usr/bin/time -f %e_s_wall_%U+%S_s_cpu"
member() { case $1 in xs) echo "litepose_xs 96" ;; s) echo "litepose_s 144" ;; esac; }
case $1 in
supernet)
  $TIME $PY -m experiments.train_supernet +experiment=supernet_rank_fair trainer.max_steps=40 \
    trainer.epochs=1 trainer.progress=false run_dir=$OUT/supernet ;;
scratch)
  for m in xs s; do
    set -- "$1" "$2" $(member $m)
    $TIME $PY -m experiments.train $RECIPE model=$3 input_size=$4 trainer.seed=$2 run_dir=$OUT/${m}_scratch_s$2
  done ;;
export)
  for m in xs s; do
    set -- "$1" $(member $m)
    $PY -c "from search_space import resolve_arch, save_arch; save_arch(resolve_arch('$2', input_size=$3, num_joints=14), '$OUT/${m}_arch.json')"
    $TIME $PY -m experiments.export arch=$OUT/${m}_arch.json supernet=$SUPERNET \
      dataset=synthetic_demo out=$OUT/${m}_export onnx=false overwrite=true
  done ;;
inherit)
  set -- "$1" "$2" "$3" $(member $3)
  $TIME $PY -m experiments.train $RECIPE model=$4 input_size=$5 trainer.seed=$2 init=$OUT/${3}_export \
    run_dir=$OUT/${3}_inherit_s$2 ;;
esac
