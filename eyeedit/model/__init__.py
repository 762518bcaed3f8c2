"""The model and its file formats: networks (U-Net, PatchGAN), losses, model files
(safetensors + JSON metadata) and ONNX export."""
