"""OS1 personas: cards, workers, minds, memory and the collective."""
