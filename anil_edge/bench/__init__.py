"""Benchmarks that print the tables in benchmarks/RESULTS.md (``anil-edge bench NAME``)."""

BENCHMARKS = {
    "head": "head_adaptation",  # numpy head steps vs torch autograd vs learn2learn
    "training": "meta_training",  # meta-iterations per second, fast vs l2l engine
    "export": "export_speed",  # embedding speed: eager, TorchScript, ORT FP32, ORT INT8
    "deployed": "deployed_accuracy",  # a checkpoint's accuracy: PyTorch vs ONNX FP32 vs INT8
    "recipes": "omniglot_recipe",  # the Omniglot recipe table (minutes of training per recipe)
    "deploytime": "deploy_time",  # deploy-time steps/lr and support augmentation (issue 12's study)
    "trainloop": "train_loop",  # train()'s whole loop vs its bare meta-step, GPU utilisation (issue 12)
    "openset": "open_set",  # open-set rejection: AUROC, false-accept rates, blank/noise/OOD images
}
