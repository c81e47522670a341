"""Energy and carbon: CodeCarbon around every stage run, grid intensity, benefit accounting."""
