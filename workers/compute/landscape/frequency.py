"""How often random starts reach a class of critical points: the count and an exact confidence
interval for the probability behind it.

Clopper & Pearson (1934): for x successes in n independent trials, the two-sided 1 - alpha interval
inverts two one-sided binomial tests, and through the binomial-beta identity

    lower = B(alpha/2; x, n - x + 1)    (0 when x = 0),
    upper = B(1 - alpha/2; x + 1, n - x)    (1 when x = n),

B(q; a, b) the q-quantile of the Beta(a, b) distribution. It covers the true p with probability at
least 1 - alpha for every p (conservative, never anti-conservative like the Wald interval near 0,
where the rare classes of a census live). For x = 0 the upper end is 1 - (alpha/2)^(1/n), about
3.7 / n at 95%.
"""

from scipy.stats import beta

from schemas.landscape_results import CONFIDENCE, Frequency


def clopper_pearson(count: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact two-sided interval for a binomial probability from `count` of `trials` (trials >= 1)."""
    if not 0 <= count <= trials or trials < 1:
        raise ValueError(f"need 0 <= count <= trials and trials >= 1, got {count} of {trials}")
    alpha = 1.0 - confidence
    lower = 0.0 if count == 0 else float(beta.ppf(alpha / 2, count, trials - count + 1))
    upper = 1.0 if count == trials else float(beta.ppf(1 - alpha / 2, count + 1, trials - count))
    return lower, upper


def frequency(count: int, trials: int) -> Frequency | None:
    """`count` of `trials` random starts with its 95% interval; None without random starts."""
    if trials == 0:
        return None
    lower, upper = clopper_pearson(count, trials)
    return Frequency(count=count, trials=trials, estimate=count / trials, lower=lower, upper=upper)
