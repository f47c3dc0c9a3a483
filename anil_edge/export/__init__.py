"""Export a trained backbone as a self-describing ONNX model (needs the ``train`` extra)."""
