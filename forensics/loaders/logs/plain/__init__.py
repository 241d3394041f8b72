"""Plain-text log lines (built-in line patterns or a user ``pattern=``)."""
