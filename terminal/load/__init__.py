"""The many-terminal load generator: open-loop pacing, HDR-histogram latency, summary and plot."""
