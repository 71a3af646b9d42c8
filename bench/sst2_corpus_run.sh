#!/bin/bash
# The longer run behind bench/results/sst2_example_corpus.json: a vocab and
# pretraining data from ../shared/data/corpus, 4000 pretraining steps of the
# quickstart-size model (16 min on 2 cores), then bench/sst2_example.py.
set -e
M=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p /tmp/longrun && cd /tmp/longrun
# The quickstart model with an 8k vocabulary.
python -c "from albert_tf import quickstart; open('albert_config.json', 'w').write(quickstart.QUICKSTART_CONFIG.replace(vocab_size=8000).to_json_string())"
python -m albert_tf.tokenization.train_spm --input="$M/../shared/data/corpus/*.txt" --model_prefix=spm --vocab_size=8000 --preprocess
python $M/create_pretraining_data.py --input_file="$M/../shared/data/corpus/*.txt" --output_file=data-0.tfrecord,data-1.tfrecord --spm_model_file=spm.model --max_seq_length=64 --max_predictions_per_seq=10 --dupe_factor=2 --num_workers=2 --stats_file=stats.json
python $M/run_pretraining.py --albert_config_file=albert_config.json --input_file='data-*.tfrecord' --output_dir=out --max_seq_length=64 --max_predictions_per_seq=10 --train_batch_size=32 --num_train_steps=4000 --num_warmup_steps=200 --learning_rate=0.005 --save_checkpoints_steps=2000 --do_eval --eval_batch_size=32 --max_eval_steps=20 --log_every_n_steps=500 --iterations_per_loop=100
mkdir -p out/data && cp spm.model out/data/spm.model
python $M/bench/sst2_example.py --pretrained_dir=/tmp/longrun/out --data_dir=$M/../shared/data/glue --learning_rate=1e-4 --work_dir=/tmp/albert_sst2_long --output=$M/bench/results/sst2_example_corpus.json
