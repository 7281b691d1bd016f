"""DVC stage adapters: one thin module per stage.

Each module reads its own ``params.yaml`` section (validated), takes its paths
from the command line (written only in ``dvc.yaml``) and calls one library
function. ``python -m stages.<name> --help`` lists the paths it takes.
"""
