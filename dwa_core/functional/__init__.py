"""Pure tensor maths of the approaches (penalties, gates, merges), tested alone."""
