"""The regulator's side: trail queries, the integrity audit, (next) alerts, lineage and reports."""
