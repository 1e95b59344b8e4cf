#!/usr/bin/perl
# The git gate's hooks, as thin clients: the gate's own daemon decides every fetch and push; this
# only carries the call (the hook's name, its arguments, the repository it runs in, the quarantine
# receive-pack set up, and its standard input) over the gate's unix socket, and the answer back:
# what to print on stdout or stderr, then the exit code. Perl because it is Debian's essential
# perl-base and starts in milliseconds, where a hook of its own in node took a fifth of a second.
#   gate-hook.pl access|pre-receive [ARG…]
use strict;
use warnings;
use Cwd ();
use IO::Socket::UNIX;

my $hook = shift @ARGV // '';
# git daemon shows the first line an access hook prints on stdout; receive-pack shows stderr.
my $say = $hook eq 'access' ? \*STDOUT : \*STDERR;
binmode $_ for \*STDIN, \*STDOUT, \*STDERR;
STDOUT->autoflush(1);

sub fail {
    print {$say} "bot-bottle git-gate: $_[0]\n";
    exit 1;
}

my $path = $ENV{BOT_BOTTLE_GIT_GATE_SOCKET} // fail('no gate to ask (BOT_BOTTLE_GIT_GATE_SOCKET is unset)');
my $gate = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path)
    or fail("the gate is not answering ($!)");
binmode $gate;

# The call: NUL-terminated key and value pairs, an empty key, then the hook's standard input.
my @call = (hook => $hook, cwd => Cwd::getcwd() // '');
push @call, arg => $_ for @ARGV;
for my $name (qw(GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_QUARANTINE_PATH)) {
    push @call, env => "$name=$ENV{$name}" if defined $ENV{$name};
}
fail('an argument holds a NUL') if grep { index($_, "\0") >= 0 } @call;
my $input = '';
if ($hook eq 'pre-receive') {
    local $/;
    $input = <STDIN> // '';
}
print {$gate} join('', map { "$_\0" } @call), "\0", $input or fail("the gate went away ($!)");
shutdown($gate, 1);

# The answer: frames "o<length>\n<bytes>" (stdout), "e<length>\n<bytes>" (stderr), "x<code>\n".
while (defined(my $head = <$gate>)) {
    exit $1 if $head =~ /\Ax(\d{1,3})\n\z/;
    fail('the gate answered out of turn') unless $head =~ /\A([oe])(\d{1,9})\n\z/;
    my ($to, $left, $bytes) = ($1 eq 'o' ? \*STDOUT : \*STDERR, $2, '');
    while ($left > 0) {
        my $n = read($gate, $bytes, $left, length $bytes);
        fail('the gate ended the answer early') unless $n;
        $left -= $n;
    }
    print {$to} $bytes;
}
fail('the gate ended the call without an answer');
