"""What the stages report (summaries, dataset statistics and plots) and the tools show (a trace, previews)."""
