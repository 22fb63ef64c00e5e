"""The meeting media plane: an SFU that forwards encoded audio/video between commune sites, never transcoding."""
