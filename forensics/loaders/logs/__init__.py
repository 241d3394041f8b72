"""Log formats: JSON lines (:mod:`.json_logs`, also container logs), logfmt (:mod:`.logfmt`)
and plain text (:mod:`.plain`); :mod:`.common` turns their records into ``logs`` rows."""
