#!/bin/bash
# The small pretrained model behind bench/squad_example.py,
# bench/race_example.py and bench/bench_squad_predict.py: the quickstart
# model (4 layers sharing one group, E=64, H=128) with an 8k SentencePiece
# vocabulary trained on ../shared/data/corpus, pretrained (MLM + SOP, LAMB)
# at max_seq_length 128. Outputs go to $OUT (default /tmp/albert_examples),
# never into the repository. STEPS (default 1500) sizes the run.
set -euo pipefail
M=$(cd "$(dirname "$0")/.." && pwd)
CORPUS="$M/../shared/data/corpus/*.txt"
OUT=${OUT:-/tmp/albert_examples}
STEPS=${STEPS:-1500}
mkdir -p "$OUT" && cd "$OUT"
python3 -c "from albert_tf import quickstart; open('albert_config.json', 'w').write(quickstart.QUICKSTART_CONFIG.replace(vocab_size=8000).to_json_string())"
[ -f spm.model ] || python3 -m albert_tf.tokenization.train_spm --input="$CORPUS" --model_prefix=spm --vocab_size=8000 --preprocess
[ -f data-1.tfrecord ] || python3 "$M/create_pretraining_data.py" --input_file="$CORPUS" --output_file=data-0.tfrecord,data-1.tfrecord --spm_model_file=spm.model --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=2 --num_workers=2 --stats_file=stats.json
python3 "$M/run_pretraining.py" --albert_config_file=albert_config.json --input_file='data-*.tfrecord' --output_dir=pretrain --max_seq_length=128 --max_predictions_per_seq=20 --train_batch_size=32 --num_train_steps="$STEPS" --num_warmup_steps=100 --learning_rate=0.005 --save_checkpoints_steps=500 --do_eval --eval_batch_size=32 --max_eval_steps=20 --log_every_n_steps=100 --iterations_per_loop=100
# The fine-tuning examples read <pretrained_dir>/{albert_config.json,data/spm.model,best}.
mkdir -p pretrain/data && cp spm.model pretrain/data/spm.model && cp albert_config.json pretrain/albert_config.json
