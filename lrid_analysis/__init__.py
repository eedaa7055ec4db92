"""lrid_analysis: identify learning rules from neural-network observables.

The analysis engine of lrid: the tidy Parquet data contract
(:mod:`lrid_analysis.dataset`), the observable catalogue
(:mod:`lrid_analysis.observables`), the public dataset
(:mod:`lrid_analysis.public`), and the experiments of Nayebi et al. (2020).
"""

__version__ = "0.1.0"
