"""Example IdeaCards (YAML) and the example Python strategy behind detector_driven.yaml."""
