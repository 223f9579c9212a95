"""The native baseline: every stage as a Faust agent, topic → agent → next topic. No serverless."""
