from .frames_data_preprocessor import FramesDataPreprocessor

__all__ = ['FramesDataPreprocessor']
