"""The scan domain: image intake and storage, vision and text providers, disposal rules, samples."""
