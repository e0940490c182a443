"""Synth: page store -> length-controlled, instruction-formatted long-document VQA samples."""
