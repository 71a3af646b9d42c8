"""`python3 -m albert_tf.convert`: the converter's command-line name.

The converter lives in `albert_tf.checkpoints.convert`; this entry point
keeps the documented command working.
"""

from absl import app
from absl import flags

from albert_tf.checkpoints import convert

if __name__ == "__main__":
    __doc__ = convert.__doc__  # What --help prints.
    convert.define_flags()
    flags.adopt_module_key_flags(convert)
    app.run(convert.main)
