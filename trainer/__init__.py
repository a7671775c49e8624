"""The bundled PyTorch trainer and validator; reads the same skeleton file as posedata."""
