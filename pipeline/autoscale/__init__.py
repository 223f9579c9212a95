"""Autoscaling decision rules as pure policy objects: time and observations in, decisions out."""
