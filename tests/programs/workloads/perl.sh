#!/usr/bin/env bash
# perl workload: large hashes (build, grow, delete, rebuild), string concatenation,
# regex substitution, split/join, sort and sprintf. Perl's SVs, hash buckets and
# string buffers all come from malloc.
# Usage: perl.sh WORKDIR   (prints a deterministic summary on stdout)
set -euo pipefail
workdir=${1:?usage: perl.sh WORKDIR}
cd "$workdir"
export LC_ALL=C PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0
unset PERL5LIB PERL5OPT PERLLIB

cat > work.pl <<'PL'
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);

my $sha = Digest::SHA->new(256);
sub report { my $line = join(' ', @_); $sha->add($line); print "$line\n"; }

# Hashes: every key order that is printed is sorted; iteration order never matters.
my %h;
for my $i (0 .. 199_999) {
    $h{"key$i-" . ('x' x ($i % 29))} = [$i, $i * 3, "v$i"];
}
delete $h{"key$_-" . ('x' x ($_ % 29))} for grep { $_ % 3 == 0 } 0 .. 199_999;
$h{"extra$_"} = { n => $_, s => 'y' x ($_ % 53) } for 0 .. 59_999;
my $sum = 0;
for my $v (values %h) { $sum += ref $v eq 'ARRAY' ? $v->[0] : $v->{n}; }
my @keys = sort keys %h;
report('hash', scalar(@keys), $sum, $keys[0], $keys[-1], sha256_hex(join(',', @keys[0 .. 999])));
%h = ();

# Hash of arrays, grown one element at a time.
my %groups;
push @{ $groups{ ($_ * 7919) % 5003 } }, $_ for 0 .. 299_999;
my $gsum = 0;
$gsum += scalar(@{ $groups{$_} }) * $_ for keys %groups;
report('groups', scalar(keys %groups), $gsum);
undef %groups;

# Strings: build, substitute, split, join, sprintf, reverse.
my $s = '';
$s .= sprintf('%06d:%s;', $_, 'ab' x ($_ % 13)) for 0 .. 199_999;
(my $t = $s) =~ s/ab/xyz/g;
my @f = split /;/, $t;
my $j = join '|', map { scalar reverse $_ } @f;
my $count = () = $j =~ /zyx/g;
report('string', length($s), length($t), scalar(@f), length($j), $count, sha256_hex($j));

# Sorting records by several keys.
my @recs = map { { id => $_, k => ($_ * 104729) % 1000, name => 'n' . (($_ * 31) % 99991) } } 0 .. 149_999;
my @sorted = sort { $a->{k} <=> $b->{k} or $a->{name} cmp $b->{name} or $a->{id} <=> $b->{id} } @recs;
report('sort', scalar(@sorted), $sorted[0]{id}, $sorted[-1]{id}, $sorted[75_000]{name});

print 'digest ', $sha->hexdigest, "\n";
PL
perl work.pl
