"""The gateway's HTTP routes: model routes (admission, rewrite, forward) and its own."""
